import { z } from 'zod';
import { commonSettingsSchema } from '@keytower/config';

/** Crash points the HSM connector honours under the test profile. */
export const CRASH_POINTS = ['after-provider-call'] as const;

/**
 * HSM connector settings: the common ones plus `KEYTOWER_PKCS11_MODULE`,
 * `KEYTOWER_PKCS11_TOKEN_LABEL`, `KEYTOWER_PKCS11_PIN` (or `KEYTOWER_PKCS11_PIN_FILE`),
 * `KEYTOWER_PKCS11_SESSION_POOL_SIZE`, `KEYTOWER_CONNECTOR_CONCURRENCY`,
 * `KEYTOWER_TEST_PROFILE` and `KEYTOWER_CRASH_POINT`. The PIN is a secret: the settings
 * loader never prints it, and the logger redacts the `pin` field.
 */
export const hsmSettingsSchema = commonSettingsSchema.extend({
  /** Path of the PKCS#11 v2.40 module. */
  pkcs11Module: z.string().min(1).default('/usr/lib/softhsm/libsofthsm2.so'),
  /** Label of the token to use; PKCS#11 token labels are at most 32 bytes. */
  pkcs11TokenLabel: z.string().min(1).max(32),
  /** User PIN of the token. */
  pkcs11Pin: z.string().min(1),
  /** Long-lived sessions kept open on the token. */
  pkcs11SessionPoolSize: z.number().int().min(1).max(64).default(4),
  /** Operations handled at once; at most the session pool size is useful. */
  connectorConcurrency: z.number().int().min(1).max(64).default(4),
  /** Enables test-only behaviour such as crash points. Never set in production. */
  testProfile: z.boolean().default(false),
  /**
   * Test-only crash point, honoured only with `testProfile`. `after-provider-call` kills the
   * process with SIGKILL after the token made the key object and before the outcome event is
   * published, so a fault test can check that the redelivered operation makes no second key.
   */
  crashPoint: z.enum(CRASH_POINTS).optional(),
});

export type HsmSettings = z.output<typeof hsmSettingsSchema>;
