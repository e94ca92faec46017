import { z } from 'zod';

/** Log levels in pino's terms. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Settings every service reads. Services add their own with `.extend()`:
 * `commonSettingsSchema.extend({ clickhouseUrl: z.url() })`.
 */
export const commonSettingsSchema = z.object({
  /** NATS server URLs, comma-separated, for example `nats://127.0.0.1:4222`. */
  natsUrl: z
    .string()
    .regex(/^(nats|tls|ws|wss):\/\/[^\s,]+(,(nats|tls|ws|wss):\/\/[^\s,]+)*$/, 'nats:// URL'),
  natsUser: z.string().min(1),
  natsPassword: z.string().min(1),
  logLevel: z.enum(LOG_LEVELS).default('info'),
  /** Port of the loopback `/healthz` and `/readyz` server; unset means no health server. */
  healthPort: z.number().int().min(0).max(65_535).optional(),
  /** Base URL of an OTLP/HTTP collector; unset means nothing is exported. */
  otlpEndpoint: z.url().optional(),
});

export type CommonSettings = z.output<typeof commonSettingsSchema>;
