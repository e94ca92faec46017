import { trace } from '@opentelemetry/api';
import { pino } from 'pino';
import type { Logger, LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

/** Log levels accepted by {@link createLogger}, in pino's terms. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Field names whose values are replaced by `<redacted>` wherever they appear, at the top
 * level of a log line or one level down (for example `config.password` or `err.pin`).
 */
export const REDACTED_FIELDS = [
  'password',
  'natsPassword',
  'pin',
  'soPin',
  'secret',
  'keyMaterial',
  'plaintext',
  'token',
  'authorization',
  'privateKey',
  'wrappedKey',
] as const;

/** Replacement text for a redacted value. */
export const REDACTED = '<redacted>';

export interface LoggerOptions {
  /** Service name written on every line as `service`. */
  service: string;
  level?: LogLevel;
  /**
   * Destination stream; defaults to standard output. Tests pass a stream to read lines back.
   */
  destination?: NodeJS.WritableStream;
}

/** Ids a child logger binds so every line of one unit of work carries them. */
export interface LogIds {
  correlationId?: string;
  traceId?: string;
  commandId?: string;
  keyId?: string;
  operationId?: string;
}

function redactPaths(): string[] {
  return REDACTED_FIELDS.flatMap((field) => [field, `*.${field}`]);
}

/**
 * Adds the trace id and span id of the active OpenTelemetry span to a log line. A line
 * written outside any span, or while no tracer is registered, gets no trace fields.
 */
export function activeTraceFields(): { traceId?: string; spanId?: string } {
  const spanContext = trace.getActiveSpan()?.spanContext();
  if (spanContext === undefined || !trace.isSpanContextValid(spanContext)) {
    return {};
  }
  return { traceId: spanContext.traceId, spanId: spanContext.spanId };
}

/**
 * Creates the JSON logger of one service: `service` on every line, secrets redacted, and
 * the active trace id added to each line written inside a span.
 */
export function createLogger(options: LoggerOptions): Logger {
  const level: LevelWithSilent = options.level ?? 'info';
  const settings = {
    level,
    base: { service: options.service },
    redact: { paths: redactPaths(), censor: REDACTED },
    mixin: activeTraceFields,
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.destination === undefined) {
    return pino(settings);
  }
  return pino(settings, options.destination);
}

/** Creates a child logger bound to the ids of one message, command or operation. */
export function withIds(logger: Logger, ids: LogIds): Logger {
  const bound: Record<string, string> = {};
  for (const [name, value] of Object.entries(ids)) {
    if (typeof value === 'string' && value !== '') {
      bound[name] = value;
    }
  }
  return logger.child(bound);
}
