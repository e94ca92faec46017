export { HEAD_KEY, runAuditWriter, type AuditWriterOptions } from './writer.ts';
