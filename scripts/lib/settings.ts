/**
 * Service-specific settings (environment variable names) of each keytower service, as the
 * services' config schemas define them. tests/stack/compose.test.ts prefers the schemas a service
 * package exports and uses this list only for a service that exports none.
 */
import type { ServiceName } from './services.ts';

export const DOCUMENTED_SETTINGS: Readonly<Record<ServiceName | 'cli', readonly string[]>> = {
  policy: ['KEYTOWER_TEST_PROFILE', 'KEYTOWER_POLICY_ALLOW', 'KEYTOWER_CRASH_POINT'],
  audit: ['KEYTOWER_CRASH_POINT'],
  'sink-clickhouse': [
    'KEYTOWER_CLICKHOUSE_URL',
    'KEYTOWER_CLICKHOUSE_DATABASE',
    'KEYTOWER_CLICKHOUSE_USER',
    'KEYTOWER_CLICKHOUSE_PASSWORD',
    'KEYTOWER_CLICKHOUSE_PASSWORD_FILE',
  ],
  'sink-kafka': ['KEYTOWER_KAFKA_BROKERS', 'KEYTOWER_KAFKA_TOPIC'],
  'connector-hsm': [
    'KEYTOWER_PKCS11_MODULE',
    'KEYTOWER_PKCS11_TOKEN_LABEL',
    'KEYTOWER_PKCS11_PIN',
    'KEYTOWER_PKCS11_PIN_FILE',
    'KEYTOWER_CRASH_POINT',
  ],
  cli: [],
};
