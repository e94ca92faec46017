export { canonicalBytes, canonicalJson, sha256Hex } from './canonical.ts';
export { GENESIS_HASH, chainHash, isHashHex, recordId } from './chain.ts';
export {
  AUDIT_SCHEMA_VERSION,
  buildRecord,
  canonicalRecord,
  recordBody,
  type AuditMessageSummary,
  type AuditRecord,
  type AuditRecordBody,
  type AuditSignature,
  type AuditSource,
  type BuildRecordInput,
  type UnparseableEnvelope,
} from './record.ts';
export {
  InvalidAuditRecordError,
  decodeRecord,
  verifyChain,
  verifyStoredChain,
  type ChainBreak,
  type ChainBreakKind,
  type ChainPosition,
  type ChainVerification,
  type StoredRecord,
  type VerifyOptions,
} from './verify.ts';
export { checkpointOf, type AuditCheckpoint, type ChainHead } from './checkpoint.ts';
