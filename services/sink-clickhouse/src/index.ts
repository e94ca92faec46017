export {
  AUDIT_TABLE,
  ClickHouseAuditStore,
  applySchema,
  auditRow,
  type AuditRow,
  type ClickHouseStoreOptions,
} from './store.ts';
export { InsertBatcher, type BatcherOptions } from './batcher.ts';
export { runClickHouseSink, type ClickHouseSinkOptions } from './sink.ts';
