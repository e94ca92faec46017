import { z } from 'zod';
import { commonSettingsSchema } from '@keytower/config';
import { parseAllowList } from './authorize.ts';

/**
 * Policy settings: the common ones plus `KEYTOWER_POLICY_ALLOW` (or `policyAllow` in the
 * config file) and `KEYTOWER_TEST_PROFILE`.
 */
export const policySettingsSchema = commonSettingsSchema.extend({
  /** Allow-list such as `user:alice=create,rotate;user:oncall=*`; empty rejects every command. */
  policyAllow: z
    .string()
    .default('')
    .superRefine((text, context) => {
      try {
        parseAllowList(text);
      } catch (error) {
        context.addIssue({
          code: 'custom',
          message: error instanceof Error ? error.message : String(error),
        });
      }
    }),
  /** `true` lets a pending window go down to 1 second instead of 7 days. Never set in production. */
  testProfile: z.boolean().default(false),
  /**
   * Test-only crash point. `after-admission` kills the process with SIGKILL after a command's
   * pending operation and `in-progress` status are stored but before the operation is
   * published, so a fault test can check that the redelivered command publishes the same one.
   */
  crashPoint: z.enum(['after-admission']).optional(),
  /** Handlers of the command consumer running at once. */
  policyCommandConcurrency: z.number().int().min(1).max(64).default(4),
});

export type PolicySettings = z.output<typeof policySettingsSchema>;
