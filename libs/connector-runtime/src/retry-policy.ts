import { isProviderError } from '@keytower/provider';
import type { ProviderErrorCode } from '@keytower/provider';

/** Whether the connector retries a provider error code, and why. */
export interface RetryRule {
  retry: boolean;
  reason: string;
}

/**
 * The allow-list of retryable provider error codes. Only these are redelivered; every other
 * failure becomes an `operation.failed` event at once, because repeating it cannot change
 * the result and would only hold the key's single in-flight slot longer.
 */
export const RETRY_RULES: Readonly<Record<ProviderErrorCode, RetryRule>> = {
  transport: {
    retry: true,
    reason:
      'the request may never have reached the provider; adapters are idempotent, so a repeat is safe',
  },
  unavailable: {
    retry: true,
    reason: 'the provider or device said it cannot serve now, which is temporary',
  },
  throttled: {
    retry: true,
    reason: 'the provider asked for fewer requests; the retry waits at least as long as it asked',
  },
  'clock-skew': {
    retry: true,
    reason: 'the signing client corrects its clock offset from the rejected answer',
  },
  authentication: {
    retry: false,
    reason:
      'rejected credentials (PIN, token, signature) do not fix themselves; an operator must act',
  },
  'not-supported': {
    retry: false,
    reason: 'the provider lacks the ability; a repeat gets the same answer',
  },
  'key-not-found': {
    retry: false,
    reason: 'the key or version is gone; only another command could bring it back',
  },
  'invalid-state': {
    retry: false,
    reason: 'the key state forbids the call until another command changes it',
  },
  'crypto-rejected': {
    retry: false,
    reason: 'the provider rejected the request itself, not its transport',
  },
  internal: { retry: false, reason: 'an unclassified failure is not known to be safe to repeat' },
};

/** Settings of {@link RetryPolicy}. */
export interface RetryPolicyOptions {
  /** Delay before the second attempt, in milliseconds. */
  initialDelayMs: number;
  /** Largest delay between attempts, in milliseconds. */
  maxDelayMs: number;
  multiplier: number;
  /** Attempts in total, the first included; the last failure publishes `operation.failed`. */
  maxAttempts: number;
  /** Source of randomness in [0, 1), replaceable for tests. */
  random: () => number;
}

/** Decision after a failed attempt: retry after a delay, or give up. */
export type RetryDecision =
  | { retry: true; delayMs: number; code: string; reason: string }
  | { retry: false; code: string; reason: string; retryable: boolean };

export const DEFAULT_RETRY_POLICY: RetryPolicyOptions = {
  initialDelayMs: 1_000,
  maxDelayMs: 30_000,
  multiplier: 2,
  maxAttempts: 5,
  random: Math.random,
};

/**
 * The one retry policy of every connector: an allow-list of retryable codes and exponential
 * backoff with "equal jitter" (a delay between half and all of the capped exponential value),
 * so replicas that failed together do not retry in step.
 */
export class RetryPolicy {
  readonly options: RetryPolicyOptions;

  constructor(options: Partial<RetryPolicyOptions> = {}) {
    this.options = { ...DEFAULT_RETRY_POLICY, ...options };
    const { initialDelayMs, maxDelayMs, multiplier, maxAttempts } = this.options;
    if (
      initialDelayMs < 0 ||
      maxDelayMs < initialDelayMs ||
      multiplier < 1 ||
      !Number.isInteger(maxAttempts) ||
      maxAttempts < 1
    ) {
      throw new RangeError(
        `invalid retry policy: initialDelayMs=${initialDelayMs}, maxDelayMs=${maxDelayMs}, multiplier=${multiplier}, maxAttempts=${maxAttempts}`,
      );
    }
  }

  /** Returns the delay before attempt `attempt + 1`, after attempt `attempt` (1-based) failed. */
  delayMs(attempt: number, retryAfterMs?: number): number {
    const { initialDelayMs, maxDelayMs, multiplier, random } = this.options;
    const exponential = initialDelayMs * multiplier ** Math.max(0, attempt - 1);
    const capped = Math.min(maxDelayMs, exponential);
    const jittered = Math.round(capped / 2 + random() * (capped / 2));
    // A provider's own Retry-After wins when it requests a longer wait than the backoff.
    return retryAfterMs === undefined
      ? jittered
      : Math.max(jittered, Math.min(retryAfterMs, maxDelayMs));
  }

  /**
   * Decides whether attempt `attempt` (1-based) is retried. Errors that are not provider
   * errors count as `internal`, because the adapter boundary should have mapped them.
   */
  decide(error: unknown, attempt: number): RetryDecision {
    const code: ProviderErrorCode = isProviderError(error) ? error.code : 'internal';
    const rule = RETRY_RULES[code];
    if (!rule.retry) {
      return { retry: false, code, reason: rule.reason, retryable: false };
    }
    if (attempt >= this.options.maxAttempts) {
      return {
        retry: false,
        code,
        reason: `gave up after ${attempt} attempts: ${rule.reason}`,
        retryable: true,
      };
    }
    const retryAfterMs = isProviderError(error) ? error.retryAfterMs : undefined;
    return { retry: true, delayMs: this.delayMs(attempt, retryAfterMs), code, reason: rule.reason };
  }
}
