export {
  createLogger,
  withIds,
  activeTraceFields,
  LOG_LEVELS,
  REDACTED,
  REDACTED_FIELDS,
} from './logger.ts';
export type { Logger, LoggerOptions, LogIds, LogLevel } from './logger.ts';
export { startTelemetry } from './telemetry.ts';
export type { Telemetry, TelemetryOptions } from './telemetry.ts';
export { startHealthServer } from './health.ts';
export type { HealthServer, HealthServerOptions, ReadinessCheck } from './health.ts';
