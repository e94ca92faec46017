import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { createLogger } from '@keytower/telemetry';
import type { Logger } from '@keytower/telemetry';
import type { Envelope } from '@keytower/contracts';
import { STREAMS, subjects } from '@keytower/contracts';
import type { Bus } from '../../src/index.ts';

/** A logger that keeps its JSON lines in memory, so tests can read what was logged. */
export function memoryLogger(service = 'bus-test'): {
  logger: Logger;
  lines: () => Record<string, unknown>[];
} {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const level = process.env.KEYTOWER_TEST_LOG_LEVEL === 'debug' ? 'debug' : 'info';
  return {
    logger: createLogger({ service, level, destination }),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** A valid v1 envelope with a fresh or given id, for publishing in tests. */
export function testEnvelope(data: unknown, id = `t-${randomBytes(8).toString('hex')}`): Envelope {
  return {
    specversion: '1.0',
    id,
    source: 'keytower/bus-test',
    type: 'keytower.event.test.v1',
    time: new Date().toISOString(),
    subject: 'kt_test',
    datacontenttype: 'application/json',
    data,
    actor: 'system:bus-test',
    correlationid: id,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a value other than `undefined`, or fails after `timeoutMs`. */
export async function waitFor<T>(
  description: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    }
    await sleep(50);
  }
}

/** Reads every dead letter of one durable from `KMS_DLQ`, oldest first. */
export async function readDeadLetters(
  bus: Bus,
  stream: string,
  durable: string,
): Promise<Envelope[]> {
  const subject = subjects.deadLetter(stream, durable);
  const info = await bus.manager.streams.info(STREAMS.deadLetters, { subjects_filter: subject });
  const count = info.state.subjects?.[subject] ?? 0;
  if (count === 0) {
    return [];
  }
  const consumer = await bus.jetstream.consumers.get(STREAMS.deadLetters, {
    filter_subjects: [subject],
  });
  const envelopes: Envelope[] = [];
  while (envelopes.length < count) {
    const message = await consumer.next({ expires: 2_000 });
    if (message === null) {
      break;
    }
    envelopes.push(message.json<Envelope>());
  }
  await consumer.delete().catch(() => false);
  return envelopes;
}
