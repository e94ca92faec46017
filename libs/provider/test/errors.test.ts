import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  AuthenticationError,
  ClockSkewError,
  CryptoRejectedError,
  InvalidStateError,
  KeyNotFoundError,
  NotSupportedError,
  ProviderError,
  ThrottledError,
  TransportError,
  UnavailableError,
  isAuthenticationError,
  isCryptoRejectedError,
  isInvalidStateError,
  isKeyNotFoundError,
  isNotSupportedError,
  isProviderError,
  isRetryableProviderError,
  isThrottledError,
  isTransportError,
} from '../src/index.ts';

const cases = [
  {
    make: () => new NotSupportedError('no import', { provider: 'hsm' }),
    name: 'NotSupportedError',
    code: 'not-supported',
    retryable: false,
  },
  {
    make: () => new KeyNotFoundError('gone', { provider: 'aws' }),
    name: 'KeyNotFoundError',
    code: 'key-not-found',
    retryable: false,
  },
  {
    make: () => new InvalidStateError('pending deletion', { provider: 'aws' }),
    name: 'InvalidStateError',
    code: 'invalid-state',
    retryable: false,
  },
  {
    make: () => new CryptoRejectedError('bad template', { provider: 'hsm' }),
    name: 'CryptoRejectedError',
    code: 'crypto-rejected',
    retryable: false,
  },
  {
    make: () => new TransportError('socket reset', { provider: 'gcp' }),
    name: 'TransportError',
    code: 'transport',
    retryable: true,
  },
  {
    make: () => new UnavailableError('device removed', { provider: 'hsm' }),
    name: 'UnavailableError',
    code: 'unavailable',
    retryable: true,
  },
  {
    make: () => new AuthenticationError('pin', { provider: 'hsm' }),
    name: 'AuthenticationError',
    code: 'authentication',
    retryable: false,
  },
  {
    make: () => new ClockSkewError('skew', { provider: 'oci' }),
    name: 'ClockSkewError',
    code: 'clock-skew',
    retryable: true,
  },
  {
    make: () => new ThrottledError('slow down', { provider: 'azure', retryAfterMs: 1500 }),
    name: 'ThrottledError',
    code: 'throttled',
    retryable: true,
  },
] as const;

describe('provider error hierarchy', () => {
  for (const entry of cases) {
    it(`${entry.name} carries code and retryable`, () => {
      const error = entry.make();

      assert.ok(error instanceof ProviderError);
      assert.ok(error instanceof Error);
      assert.equal(error.name, entry.name);
      assert.equal(error.code, entry.code);
      assert.equal(error.retryable, entry.retryable);
      assert.equal(isProviderError(error), true);
      assert.equal(isRetryableProviderError(error), entry.retryable);
    });
  }

  it('keeps the native cause and retry delay', () => {
    const native = new Error('CKR_DEVICE_ERROR');
    const error = new ThrottledError('rate limited', {
      provider: 'aws',
      cause: native,
      retryAfterMs: 2000,
    });

    assert.equal(error.cause, native);
    assert.equal(error.retryAfterMs, 2000);
    assert.equal(error.provider, 'aws');
  });

  it('leaves the cause out of the JSON form', () => {
    const error = new CryptoRejectedError('template rejected', {
      provider: 'hsm',
      cause: new Error('native detail'),
    });

    assert.deepEqual(JSON.parse(JSON.stringify(error)), {
      name: 'CryptoRejectedError',
      code: 'crypto-rejected',
      message: 'template rejected',
      retryable: false,
      provider: 'hsm',
    });
  });

  it('counts unavailability as a transport failure', () => {
    const error = new UnavailableError('token removed', { provider: 'hsm' });

    assert.equal(isTransportError(error), true);
    assert.equal(isTransportError(new AuthenticationError('pin', { provider: 'hsm' })), false);
  });

  it('guards match only their own class', () => {
    const guards = [
      [isNotSupportedError, NotSupportedError],
      [isKeyNotFoundError, KeyNotFoundError],
      [isInvalidStateError, InvalidStateError],
      [isCryptoRejectedError, CryptoRejectedError],
      [isAuthenticationError, AuthenticationError],
      [isThrottledError, ThrottledError],
    ] as const;

    for (const [guard, ErrorClass] of guards) {
      assert.equal(guard(new ErrorClass('x', { provider: 'hsm' })), true, ErrorClass.name);
      assert.equal(guard(new TransportError('x', { provider: 'hsm' })), false, ErrorClass.name);
      assert.equal(guard(new Error('x')), false, ErrorClass.name);
    }
  });

  it('rejects values that are not provider errors', () => {
    assert.equal(isProviderError(new Error('plain')), false);
    assert.equal(isProviderError({ code: 'transport', retryable: true }), false);
    assert.equal(isRetryableProviderError(undefined), false);
  });
});
