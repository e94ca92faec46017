export { HEAD_KEY, runAuditWriter, type AuditWriterOptions } from './writer.ts';
export { runAsLeader, type LeaderWork, type LeadershipOptions } from './leadership.ts';
