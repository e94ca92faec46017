/**
 * The keytower services `npm start` runs, and the settings each one gets from the stack descriptor.
 * docker-compose.yml describes the same services with the same variable names.
 */
import { userInfo } from 'node:os';
import { join } from 'node:path';
import type { StackDescriptor } from '@keytower/config';

export const SERVICE_NAMES = [
  'policy',
  'audit',
  'sink-clickhouse',
  'sink-kafka',
  'connector-hsm',
] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export interface ServiceDefinition {
  name: ServiceName;
  /** Entry point relative to the repository root. */
  entry: string;
  /** NATS user the service connects as; each service has its own. */
  natsUser: string;
  /** Loopback port of its /healthz and /readyz server under `npm start`. */
  healthPort: number;
  /** Service-specific settings, as environment variables, taken from the stack descriptor. */
  settings(descriptor: StackDescriptor): Record<string, string>;
}

const FIRST_HEALTH_PORT = 7100;

function noSettings(): Record<string, string> {
  return {};
}

/**
 * Returns the policy allow-list for a local stack: `KEYTOWER_POLICY_ALLOW` when the operator set it,
 * otherwise every action for the local user, who is also the CLI's default actor.
 */
export function localAllowList(): string {
  const configured = process.env.KEYTOWER_POLICY_ALLOW;
  if (configured) return configured;

  const name = process.env.USER ?? process.env.LOGNAME ?? userInfo().username;
  return `user:${name}=*`;
}

const SPECIFIC_SETTINGS: Record<ServiceName, ServiceDefinition['settings']> = {
  policy: () => ({ KEYTOWER_POLICY_ALLOW: localAllowList() }),
  audit: noSettings,
  'sink-clickhouse': (descriptor) => ({
    KEYTOWER_CLICKHOUSE_URL: descriptor.clickhouse.url,
    KEYTOWER_CLICKHOUSE_DATABASE: descriptor.clickhouse.database,
    KEYTOWER_CLICKHOUSE_USER: descriptor.clickhouse.user,
    KEYTOWER_CLICKHOUSE_PASSWORD: descriptor.clickhouse.password,
  }),
  'sink-kafka': (descriptor) => ({
    KEYTOWER_KAFKA_BROKERS: descriptor.kafka.brokers.join(','),
    KEYTOWER_KAFKA_TOPIC: descriptor.kafka.topic,
  }),
  'connector-hsm': (descriptor) => ({
    KEYTOWER_PKCS11_MODULE: descriptor.hsm.module,
    KEYTOWER_PKCS11_TOKEN_LABEL: descriptor.hsm.tokenLabel,
    KEYTOWER_PKCS11_PIN_FILE: descriptor.hsm.pinFile,
    // Read by libsofthsm2 itself, not by keytower: it locates the token folder.
    SOFTHSM2_CONF: descriptor.hsm.softhsm2Conf,
  }),
};

export const SERVICES: readonly ServiceDefinition[] = SERVICE_NAMES.map((name, index) => ({
  name,
  entry: join('services', name, 'src', 'main.ts'),
  natsUser: name,
  healthPort: FIRST_HEALTH_PORT + index,
  settings: SPECIFIC_SETTINGS[name],
}));

/** File holding a NATS user's password; the stack writes one per user into the secrets folder. */
export function natsPasswordFile(descriptor: StackDescriptor, user: string): string {
  return join(descriptor.secretsDir, `nats-${user}.password`);
}

/** Builds the environment of one service: the common settings plus its own. */
export function serviceEnvironment(
  service: ServiceDefinition,
  descriptor: StackDescriptor,
): Record<string, string> {
  return {
    KEYTOWER_NATS_URL: descriptor.nats.url,
    KEYTOWER_NATS_USER: service.natsUser,
    KEYTOWER_NATS_PASSWORD_FILE: natsPasswordFile(descriptor, service.natsUser),
    KEYTOWER_HEALTH_PORT: String(service.healthPort),
    KEYTOWER_LOG_LEVEL: 'info',
    ...service.settings(descriptor),
  };
}
