import { createHash } from 'node:crypto';
import { ulid } from 'ulid';

/**
 * Id derivation. A command's id is its idempotency key; every id derived from it is computed,
 * never random, so a redelivered message produces the same ids and consumers can drop what
 * they have already done.
 */

const HEX_LENGTH = 24;

function digest(domain: string, value: string): string {
  return createHash('sha256').update(`${domain}\u0000${value}`).digest('hex').slice(0, HEX_LENGTH);
}

/** Returns a new command id (a ULID), chosen by the sender. */
export function newCommandId(): string {
  return ulid();
}

/** Derives the id of the key that a create command makes: `kt_` and 24 hex digits. */
export function deriveKeyId(createCommandId: string): string {
  return `kt_${digest('key', createCommandId)}`;
}

/** Derives the operation id that policy forwards for an admitted command. */
export function deriveOperationId(commandId: string): string {
  return `op_${digest('operation', commandId)}`;
}

/** Derives the id of an event of the given type caused by a command, operation or message. */
export function deriveEventId(sourceId: string, eventType: string): string {
  return `ev_${digest(`event:${eventType}`, sourceId)}`;
}

/** Derives a message id from a stream position, for messages whose own id cannot be read. */
export function derivePositionId(stream: string, sequence: number): string {
  return `sp_${digest('position', `${stream}:${sequence}`)}`;
}

/** Key ids are subject tokens: letters, digits, `_` and `-`, 1 to 64 characters. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Command ids are NATS message ids and KV keys: letters, digits, `_`, `-`, 1 to 128 characters. */
export const MESSAGE_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
