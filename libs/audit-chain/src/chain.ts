import { createHash } from 'node:crypto';

import { canonicalJson, sha256Hex } from './canonical.ts';

/** The `prevHash` of the first record of a chain: 32 zero bytes as lowercase hex. */
export const GENESIS_HASH = '0'.repeat(64);

const HASH_HEX = /^[0-9a-f]{64}$/;

/** Returns true when the value is a 32-byte hash written as 64 lowercase hex digits. */
export function isHashHex(value: unknown): value is string {
  return typeof value === 'string' && HASH_HEX.test(value);
}

/**
 * Computes a chain link: SHA-256(prev_hash_bytes || canonical_record_bytes), as lowercase hex.
 *
 * `prevHashHex` is the previous record's hash (or {@link GENESIS_HASH}) and is hashed as
 * its 32 raw bytes, not as text. `canonicalRecord` is the record body in RFC 8785 form,
 * hashed as its UTF-8 bytes exactly as given.
 *
 * @throws TypeError when `prevHashHex` is not 64 lowercase hex digits.
 */
export function chainHash(prevHashHex: string, canonicalRecord: Uint8Array | string): string {
  if (!isHashHex(prevHashHex)) {
    throw new TypeError(
      `chain hash failed: prevHash must be 64 lowercase hex digits, received ${JSON.stringify(prevHashHex)}`,
    );
  }

  return createHash('sha256')
    .update(Buffer.from(prevHashHex, 'hex'))
    .update(canonicalRecord)
    .digest('hex');
}

/**
 * Derives the audit record id of a source message from its stream name and stream sequence.
 *
 * The id is `ar_` followed by the first 32 hex digits of SHA-256 over the RFC 8785 form of
 * `[stream, sequence]`. It depends on nothing else, so a writer that re-reads the same
 * source message after a takeover derives the same id, and a record already written is
 * recognised instead of being written twice.
 */
export function recordId(stream: string, sequence: number): string {
  if (stream.length === 0) {
    throw new TypeError('record id failed: the source stream name is empty');
  }
  if (!Number.isSafeInteger(sequence) || sequence < 1) {
    throw new TypeError(
      `record id failed: the source sequence must be a positive integer, received ${sequence}`,
    );
  }

  return `ar_${sha256Hex(canonicalJson([stream, sequence])).slice(0, 32)}`;
}
