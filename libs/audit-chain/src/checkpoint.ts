import type { AuditRecord } from './record.ts';

/**
 * The chain head kept in the `kms_audit_head` bucket: the last record written and the last
 * source message it covers, plus the fencing token of the writer that wrote it.
 */
export interface ChainHead {
  /** Chain sequence of the last record (0 before the first record). */
  sequence: number;
  /** Hash of the last record (`GENESIS_HASH` before the first record). */
  hash: string;
  recordId: string | null;
  /** Stream and sequence of the last source message recorded. */
  sourceStream: string;
  sourceSequence: number;
  /** Sequence of the last record in the audit record stream (`KMS_AUDIT`), 0 when empty. */
  auditStreamSequence: number;
  /** Fencing token (lease revision) of the writer that stored this head. */
  fencingToken: number;
  writer: string;
  updatedAt: string;
}

/**
 * A checkpoint: a statement that the chain up to `sequence` ends in `hash`.
 *
 * NOTE: checkpoints are not signed yet, so `signature` is always `null`, and a checkpoint
 * proves nothing on its own until signing exists.
 */
export interface AuditCheckpoint {
  sequence: number;
  hash: string;
  recordId: string;
  time: string;
  signature: string | null;
}

/** Builds the (unsigned) checkpoint for a record. */
export function checkpointOf(record: AuditRecord): AuditCheckpoint {
  return {
    sequence: record.sequence,
    hash: record.hash,
    recordId: record.recordId,
    time: record.time,
    signature: null,
  };
}
