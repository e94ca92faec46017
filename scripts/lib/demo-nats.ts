/** NATS access for the demo, the benchmark and the end-to-end tests, as the stack's `admin` user. */
import { DeliverPolicy } from '@nats-io/jetstream';
import { connectBus, type Bus } from '@keytower/bus';
import type { StackDescriptor } from '@keytower/config';
import { createLogger } from '@keytower/telemetry';

/** A message read back from a stream. */
export interface StoredStreamMessage {
  stream: string;
  sequence: number;
  subject: string;
  data: Uint8Array;
}

const FETCH_BATCH = 256;
const FETCH_EXPIRES_MS = 2000;

/** Connects as the stack's `admin` user, which may read every stream and bucket. */
export async function connectAdmin(descriptor: StackDescriptor, name: string): Promise<Bus> {
  const admin = descriptor.nats.users.admin;
  if (admin === undefined) {
    throw new Error(
      `the stack descriptor of profile ${descriptor.profile} has no NATS user "admin"`,
    );
  }
  return await connectBus({
    servers: descriptor.nats.url,
    user: admin.user,
    password: admin.password,
    name,
    logger: createLogger({ service: name, level: 'warn', destination: process.stderr }),
  });
}

/**
 * Reads every message of `stream` stored now whose subject matches one of `filterSubjects`, in
 * stream order, through an ordered consumer that is gone once the read ends.
 */
export async function readStream(
  bus: Bus,
  stream: string,
  filterSubjects: readonly string[],
): Promise<StoredStreamMessage[]> {
  const consumer = await bus.jetstream.consumers.get(stream, {
    filter_subjects: [...filterSubjects],
    deliver_policy: DeliverPolicy.All,
  });
  const info = await consumer.info();
  let remaining = info.num_pending;
  const found: StoredStreamMessage[] = [];

  while (remaining > 0) {
    const batch = await consumer.fetch({
      max_messages: Math.min(FETCH_BATCH, remaining),
      expires: FETCH_EXPIRES_MS,
    });
    let received = 0;
    for await (const message of batch) {
      found.push({ stream, sequence: message.seq, subject: message.subject, data: message.data });
      received += 1;
      remaining = message.info.pending;
    }
    if (received === 0) {
      throw new Error(`reading ${stream} stalled with ${remaining} message(s) still pending`);
    }
  }
  return found;
}
