import type { MsgHdrs } from '@nats-io/transport-node';
import { deriveEventId, derivePositionId, keyIdFromSubject, subjects } from '@keytower/contracts';
import type { DeadLetter } from '@keytower/contracts';
import type { Bus } from './connection.ts';
import type { PublishResult } from './publish.ts';

/** CloudEvents type of a dead-letter envelope. */
export const DEAD_LETTER_TYPE = 'keytower.dlq.message.v1';

export type DeadLetterReason = DeadLetter['reason'];

/** The message being given up on, as read from a delivery or from the stream. */
export interface DeadLetterInput {
  stream: string;
  durable: string;
  subject: string;
  headers: MsgHdrs | undefined;
  data: Uint8Array;
  streamSequence: number;
  attempts: number;
  lastError: string;
  reason: DeadLetterReason;
}

/**
 * Returns the dead-letter envelope id of one stream position. It depends only on the
 * stream and sequence, so the handler path and the advisory path publish the same id and
 * the dead-letter stream stores the message once.
 */
export function deadLetterId(stream: string, streamSequence: number): string {
  return deriveEventId(derivePositionId(stream, streamSequence), DEAD_LETTER_TYPE);
}

function headerRecord(headers: MsgHdrs | undefined): Record<string, string[]> {
  const record: Record<string, string[]> = {};
  if (headers === undefined) {
    return record;
  }
  for (const name of headers.keys()) {
    record[name] = headers.values(name);
  }
  return record;
}

/** Reads `id` and `correlationid` from the original payload when it is an envelope. */
function originalIds(data: Uint8Array): { id?: string; correlationid?: string } {
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(data));
    if (parsed === null || typeof parsed !== 'object') {
      return {};
    }
    const { id, correlationid } = parsed as Record<string, unknown>;
    return {
      ...(typeof id === 'string' && id !== '' ? { id } : {}),
      ...(typeof correlationid === 'string' && correlationid !== '' ? { correlationid } : {}),
    };
  } catch {
    return {};
  }
}

/**
 * Publishes a `keytower.dlq.message.v1` envelope to `kms.dlq.v1.<stream>.<durable>` with
 * the original subject, headers, base64 payload, stream sequence, attempts, last error
 * and reason. Returns the acknowledgement; `duplicate: true` means this position was
 * already dead-lettered.
 */
export async function publishDeadLetter(bus: Bus, input: DeadLetterInput): Promise<PublishResult> {
  const id = deadLetterId(input.stream, input.streamSequence);
  const original = originalIds(input.data);
  const data: DeadLetter = {
    originalSubject: input.subject,
    originalStream: input.stream,
    originalSequence: input.streamSequence,
    durable: input.durable,
    headers: headerRecord(input.headers),
    payloadBase64: Buffer.from(input.data).toString('base64'),
    attempts: input.attempts,
    lastError: input.lastError,
    reason: input.reason,
    deadLetteredAt: new Date().toISOString(),
  };
  const envelope = {
    specversion: '1.0',
    id,
    source: `keytower/${input.stream}/${input.durable}`,
    type: DEAD_LETTER_TYPE,
    time: data.deadLetteredAt,
    subject: keyIdFromSubject(input.subject) ?? '_',
    datacontenttype: 'application/json',
    data,
    actor: `service:${bus.user}`,
    correlationid: original.correlationid ?? id,
    ...(original.id === undefined ? {} : { causationid: original.id }),
  };
  return bus.publish(subjects.deadLetter(input.stream, input.durable), envelope);
}
