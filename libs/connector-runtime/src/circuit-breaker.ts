/** Settings of {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Consecutive transport failures that open the circuit. */
  failureThreshold: number;
  /** Time the circuit stays open before one trial call is let through, in milliseconds. */
  coolDownMs: number;
  /** Clock in milliseconds, replaceable for tests. */
  now: () => number;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

export const DEFAULT_CIRCUIT_BREAKER: CircuitBreakerOptions = {
  failureThreshold: 5,
  coolDownMs: 30_000,
  now: Date.now,
};

/**
 * A per-connector circuit breaker on transport failures. After `failureThreshold` consecutive
 * failures it opens: calls are refused for `coolDownMs`. Then it half-opens and lets one trial
 * call through; the trial's success closes it, its failure opens it for another cool-down.
 * Only transport failures count, because a rejected request proves the provider is reachable.
 */
export class CircuitBreaker {
  readonly options: CircuitBreakerOptions;
  #state: CircuitState = 'closed';
  #consecutiveFailures = 0;
  #openedAt = 0;
  #trialRunning = false;

  constructor(options: Partial<CircuitBreakerOptions> = {}) {
    this.options = { ...DEFAULT_CIRCUIT_BREAKER, ...options };
    if (
      !Number.isInteger(this.options.failureThreshold) ||
      this.options.failureThreshold < 1 ||
      this.options.coolDownMs < 0
    ) {
      throw new RangeError(
        `invalid circuit breaker: failureThreshold=${this.options.failureThreshold}, coolDownMs=${this.options.coolDownMs}`,
      );
    }
  }

  /** The state now, moving from open to half-open once the cool-down has passed. */
  get state(): CircuitState {
    if (this.#state === 'open' && this.options.now() - this.#openedAt >= this.options.coolDownMs) {
      this.#state = 'half-open';
      this.#trialRunning = false;
    }
    return this.#state;
  }

  /**
   * Returns whether a call may start now. In the half-open state only one trial call at a time
   * is let through; the caller must report its result with {@link recordSuccess},
   * {@link recordFailure} or {@link recordNeutral}.
   */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') {
      return true;
    }
    if (state === 'half-open' && !this.#trialRunning) {
      this.#trialRunning = true;
      return true;
    }
    return false;
  }

  /** Milliseconds until a trial call may start; 0 when a call may start now. */
  remainingCoolDownMs(): number {
    if (this.state !== 'open') {
      return 0;
    }
    return Math.max(0, this.#openedAt + this.options.coolDownMs - this.options.now());
  }

  /** Records a call that reached the provider: the circuit closes. */
  recordSuccess(): void {
    this.#state = 'closed';
    this.#consecutiveFailures = 0;
    this.#trialRunning = false;
  }

  /** Records a transport failure; opens the circuit at the threshold or after a failed trial. */
  recordFailure(): void {
    this.#consecutiveFailures += 1;
    if (this.#state === 'half-open' || this.#consecutiveFailures >= this.options.failureThreshold) {
      this.#state = 'open';
      this.#openedAt = this.options.now();
    }
    this.#trialRunning = false;
  }

  /** Records a call that ended without saying anything about reachability (for example a bug). */
  recordNeutral(): void {
    this.#trialRunning = false;
  }
}
