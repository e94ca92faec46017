import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  AuthenticationError,
  ClockSkewError,
  CryptoRejectedError,
  InvalidStateError,
  KeyNotFoundError,
  NotSupportedError,
  PROVIDER_ERROR_CODES,
  ThrottledError,
  TransportError,
  UnavailableError,
} from '@keytower/provider';

import { RETRY_RULES, RetryPolicy } from '../src/index.ts';

const provider = 'hsm' as const;

describe('retry policy', () => {
  it('has a rule with a reason for every code', () => {
    for (const code of PROVIDER_ERROR_CODES) {
      assert.ok(RETRY_RULES[code], code);
      assert.ok(RETRY_RULES[code].reason.length > 10, code);
    }
  });

  it('retries only the allow-listed errors', () => {
    const policy = new RetryPolicy({ random: () => 0 });
    const cases = [
      [new TransportError('reset', { provider }), true],
      [new UnavailableError('device removed', { provider }), true],
      [new ThrottledError('slow down', { provider }), true],
      [new ClockSkewError('skew', { provider }), true],
      [new AuthenticationError('pin', { provider }), false],
      [new NotSupportedError('no', { provider }), false],
      [new KeyNotFoundError('gone', { provider }), false],
      [new InvalidStateError('pending deletion', { provider }), false],
      [new CryptoRejectedError('template', { provider }), false],
      [new TypeError('bug'), false],
    ] as const;

    for (const [error, expected] of cases) {
      assert.equal(policy.decide(error, 1).retry, expected, error.name);
    }
  });

  it('classifies unmapped errors as internal', () => {
    const decision = new RetryPolicy().decide(new Error('boom'), 1);

    assert.equal(decision.retry, false);
    assert.equal(decision.code, 'internal');
  });

  it('grows delays exponentially up to the cap', () => {
    const policy = new RetryPolicy({
      initialDelayMs: 100,
      maxDelayMs: 1_000,
      multiplier: 2,
      random: () => 1,
    });

    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((attempt) => policy.delayMs(attempt)),
      [100, 200, 400, 800, 1_000, 1_000],
    );
  });

  it('jitters between half and all of the delay', () => {
    const low = new RetryPolicy({ initialDelayMs: 1_000, random: () => 0 });
    const high = new RetryPolicy({ initialDelayMs: 1_000, random: () => 0.999999 });

    assert.equal(low.delayMs(1), 500);
    assert.equal(high.delayMs(1), 1_000);
  });

  it('waits at least as long as the provider asks', () => {
    const policy = new RetryPolicy({ initialDelayMs: 100, maxDelayMs: 10_000, random: () => 0 });

    const decision = policy.decide(
      new ThrottledError('slow down', { provider, retryAfterMs: 4_000 }),
      1,
    );

    assert.equal(decision.retry, true);
    assert.equal(decision.retry && decision.delayMs, 4_000);
  });

  it('caps a provider delay at the maximum', () => {
    const policy = new RetryPolicy({ maxDelayMs: 5_000, random: () => 0 });

    assert.equal(policy.delayMs(1, 60_000), 5_000);
  });

  it('gives up on the last attempt', () => {
    const policy = new RetryPolicy({ maxAttempts: 3 });
    const error = new TransportError('reset', { provider });

    assert.equal(policy.decide(error, 2).retry, true);
    const last = policy.decide(error, 3);
    assert.equal(last.retry, false);
    assert.equal(!last.retry && last.retryable, true);
    assert.match(last.reason, /after 3 attempts/);
  });

  it('rejects invalid settings', () => {
    assert.throws(() => new RetryPolicy({ maxAttempts: 0 }), RangeError);
    assert.throws(() => new RetryPolicy({ initialDelayMs: 5_000, maxDelayMs: 1_000 }), RangeError);
    assert.throws(() => new RetryPolicy({ multiplier: 0.5 }), RangeError);
  });
});
