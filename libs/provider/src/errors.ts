import type { ProviderName } from '@keytower/contracts';

/**
 * Stable error codes shared by every provider adapter. The connector runtime's retry policy
 * decides on these codes, never on message text.
 */
export const PROVIDER_ERROR_CODES = [
  'not-supported',
  'key-not-found',
  'invalid-state',
  'crypto-rejected',
  'transport',
  'unavailable',
  'authentication',
  'clock-skew',
  'throttled',
  'internal',
] as const;

/** One of {@link PROVIDER_ERROR_CODES}. */
export type ProviderErrorCode = (typeof PROVIDER_ERROR_CODES)[number];

/** Options shared by every provider error constructor. */
export interface ProviderErrorOptions {
  /** The provider whose call failed. */
  provider: ProviderName;
  /** The native error (SDK exception, PKCS#11 error) that this error maps. */
  cause?: unknown;
  /** Delay the provider asked for before a retry, in milliseconds. */
  retryAfterMs?: number;
}

/**
 * Base class of every error an adapter raises. Adapters map native errors to one of the
 * subclasses at their boundary, so callers decide on `code` and `retryable` instead of
 * matching provider-specific messages.
 */
export class ProviderError extends Error {
  override readonly name: string = 'ProviderError';
  readonly code: ProviderErrorCode;
  /** Whether the same call may succeed if it is repeated unchanged later. */
  readonly retryable: boolean;
  /** Delay the provider asked for before a retry, in milliseconds, when it gave one. */
  readonly retryAfterMs: number | undefined;
  readonly provider: ProviderName;

  constructor(
    message: string,
    options: ProviderErrorOptions & { code: ProviderErrorCode; retryable: boolean },
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code;
    this.retryable = options.retryable;
    this.retryAfterMs = options.retryAfterMs;
    this.provider = options.provider;
  }

  /** Returns the fields an `operation.failed` event carries, without the native cause. */
  toJSON(): {
    name: string;
    code: ProviderErrorCode;
    message: string;
    retryable: boolean;
    provider: ProviderName;
  } {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      provider: this.provider,
    };
  }
}

/** The provider has no such ability (algorithm, import, per-version disable). Never retried. */
export class NotSupportedError extends ProviderError {
  override readonly name = 'NotSupportedError';
  constructor(message: string, options: ProviderErrorOptions) {
    super(message, { ...options, code: 'not-supported', retryable: false });
  }
}

/** The key or key version does not exist on the provider. */
export class KeyNotFoundError extends ProviderError {
  override readonly name = 'KeyNotFoundError';
  constructor(message: string, options: ProviderErrorOptions) {
    super(message, { ...options, code: 'key-not-found', retryable: false });
  }
}

/** The key is in a state that forbids the call, for example pending deletion or disabled. */
export class InvalidStateError extends ProviderError {
  override readonly name = 'InvalidStateError';
  constructor(message: string, options: ProviderErrorOptions) {
    super(message, { ...options, code: 'invalid-state', retryable: false });
  }
}

/**
 * The provider rejected the cryptographic request itself: a mechanism, template attribute,
 * key size or parameter it does not accept. Unlike a transport failure, repeating the same
 * call gives the same result.
 */
export class CryptoRejectedError extends ProviderError {
  override readonly name = 'CryptoRejectedError';
  constructor(message: string, options: ProviderErrorOptions) {
    super(message, { ...options, code: 'crypto-rejected', retryable: false });
  }
}

/** The request may not have reached the provider, or its response was lost. Retryable. */
export class TransportError extends ProviderError {
  override readonly name: string = 'TransportError';
  constructor(
    message: string,
    options: ProviderErrorOptions & { code?: 'transport' | 'unavailable' },
  ) {
    super(message, { ...options, code: options.code ?? 'transport', retryable: true });
  }
}

/**
 * The provider reported that it cannot serve now (service unavailable, device removed,
 * session pool exhausted). A kind of {@link TransportError}, so it counts toward the circuit breaker.
 */
export class UnavailableError extends TransportError {
  override readonly name = 'UnavailableError';
  constructor(message: string, options: ProviderErrorOptions) {
    super(message, { ...options, code: 'unavailable' });
  }
}

/** The credentials (PIN, token, signature) were rejected or have expired. Not retried. */
export class AuthenticationError extends ProviderError {
  override readonly name = 'AuthenticationError';
  constructor(message: string, options: ProviderErrorOptions) {
    super(message, { ...options, code: 'authentication', retryable: false });
  }
}

/**
 * The provider rejected a signed request because the local clock differs too much from its
 * own. Retryable, because the signing library usually corrects its offset from the response.
 */
export class ClockSkewError extends ProviderError {
  override readonly name = 'ClockSkewError';
  constructor(message: string, options: ProviderErrorOptions) {
    super(message, { ...options, code: 'clock-skew', retryable: true });
  }
}

/** The provider rate-limited the call. Retryable after `retryAfterMs` when the provider gave one. */
export class ThrottledError extends ProviderError {
  override readonly name = 'ThrottledError';
  constructor(message: string, options: ProviderErrorOptions) {
    super(message, { ...options, code: 'throttled', retryable: true });
  }
}

/** Returns whether `value` is a {@link ProviderError} of any subclass. */
export function isProviderError(value: unknown): value is ProviderError {
  return value instanceof ProviderError;
}

/** Returns whether `value` is a provider error that the same call may survive when repeated. */
export function isRetryableProviderError(value: unknown): value is ProviderError {
  return isProviderError(value) && value.retryable;
}

/** Returns whether `value` is a transport-level failure (including unavailability). */
export function isTransportError(value: unknown): value is TransportError {
  return value instanceof TransportError;
}

/** Returns whether `value` is a {@link NotSupportedError}. */
export function isNotSupportedError(value: unknown): value is NotSupportedError {
  return value instanceof NotSupportedError;
}

/** Returns whether `value` is a {@link KeyNotFoundError}. */
export function isKeyNotFoundError(value: unknown): value is KeyNotFoundError {
  return value instanceof KeyNotFoundError;
}

/** Returns whether `value` is an {@link InvalidStateError}. */
export function isInvalidStateError(value: unknown): value is InvalidStateError {
  return value instanceof InvalidStateError;
}

/** Returns whether `value` is a {@link CryptoRejectedError}. */
export function isCryptoRejectedError(value: unknown): value is CryptoRejectedError {
  return value instanceof CryptoRejectedError;
}

/** Returns whether `value` is an {@link AuthenticationError}. */
export function isAuthenticationError(value: unknown): value is AuthenticationError {
  return value instanceof AuthenticationError;
}

/** Returns whether `value` is a {@link ThrottledError}. */
export function isThrottledError(value: unknown): value is ThrottledError {
  return value instanceof ThrottledError;
}
