import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { CircuitBreaker } from '../src/index.ts';

function breakerWithClock(failureThreshold = 3, coolDownMs = 1_000) {
  const clock = { now: 10_000 };
  const breaker = new CircuitBreaker({ failureThreshold, coolDownMs, now: () => clock.now });
  return { breaker, clock };
}

describe('circuit breaker', () => {
  it('stays closed below the threshold', () => {
    const { breaker } = breakerWithClock(3);

    breaker.recordFailure();
    breaker.recordFailure();

    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.tryAcquire(), true);
  });

  it('opens after consecutive failures', () => {
    const { breaker } = breakerWithClock(3, 1_000);

    breaker.recordFailure();
    breaker.recordFailure();
    breaker.recordFailure();

    assert.equal(breaker.state, 'open');
    assert.equal(breaker.tryAcquire(), false);
    assert.equal(breaker.remainingCoolDownMs(), 1_000);
  });

  it('resets the count on success', () => {
    const { breaker } = breakerWithClock(3);

    breaker.recordFailure();
    breaker.recordFailure();
    breaker.recordSuccess();
    breaker.recordFailure();
    breaker.recordFailure();

    assert.equal(breaker.state, 'closed');
  });

  it('half-opens after the cool-down with one trial', () => {
    const { breaker, clock } = breakerWithClock(1, 1_000);
    breaker.recordFailure();

    clock.now += 999;
    assert.equal(breaker.tryAcquire(), false);
    assert.equal(breaker.remainingCoolDownMs(), 1);

    clock.now += 1;
    assert.equal(breaker.state, 'half-open');
    assert.equal(breaker.tryAcquire(), true);
    assert.equal(breaker.tryAcquire(), false, 'a second call waits for the trial');
  });

  it('closes when the trial succeeds', () => {
    const { breaker, clock } = breakerWithClock(1, 1_000);
    breaker.recordFailure();
    clock.now += 1_000;
    breaker.tryAcquire();

    breaker.recordSuccess();

    assert.equal(breaker.state, 'closed');
    assert.equal(breaker.tryAcquire(), true);
  });

  it('reopens when the trial fails', () => {
    const { breaker, clock } = breakerWithClock(3, 1_000);
    breaker.recordFailure();
    breaker.recordFailure();
    breaker.recordFailure();
    clock.now += 1_000;
    breaker.tryAcquire();

    breaker.recordFailure();

    assert.equal(breaker.state, 'open');
    assert.equal(breaker.remainingCoolDownMs(), 1_000);
  });

  it('frees the trial slot on a neutral result', () => {
    const { breaker, clock } = breakerWithClock(1, 1_000);
    breaker.recordFailure();
    clock.now += 1_000;
    breaker.tryAcquire();

    breaker.recordNeutral();

    assert.equal(breaker.state, 'half-open');
    assert.equal(breaker.tryAcquire(), true);
  });

  it('rejects invalid settings', () => {
    assert.throws(() => new CircuitBreaker({ failureThreshold: 0 }), RangeError);
    assert.throws(() => new CircuitBreaker({ coolDownMs: -1 }), RangeError);
  });
});
