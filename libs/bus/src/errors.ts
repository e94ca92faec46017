import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';

/**
 * Typed errors of the bus. Each has a stable `code`, keeps the underlying error as `cause`,
 * and has an `isX()` helper so callers never match message strings.
 */

/** Base class of every error raised by `@keytower/bus`. */
export class BusError extends Error {
  override readonly name: string = 'BusError';
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** A publish failed: no stream stored the message, or the server returned an error. */
export class PublishError extends BusError {
  override readonly name: string = 'PublishError';
  readonly subject: string;
  readonly messageId: string;

  constructor(
    subject: string,
    messageId: string,
    detail: string,
    options?: ErrorOptions & { code?: string },
  ) {
    super(
      options?.code ?? 'publish-failed',
      `publish of message ${messageId} to ${subject} failed: ${detail}`,
      options,
    );
    this.subject = subject;
    this.messageId = messageId;
  }
}

/**
 * A publish with an expected last sequence found a different last sequence in the stream:
 * another writer appended first. The audit writer uses this as its fence.
 */
export class WrongLastSequenceError extends PublishError {
  override readonly name: string = 'WrongLastSequenceError';
  readonly expectedLastSequence: number;

  constructor(
    subject: string,
    messageId: string,
    expectedLastSequence: number,
    options?: ErrorOptions,
  ) {
    super(
      subject,
      messageId,
      `the stream's last sequence is not ${expectedLastSequence}; another writer appended first`,
      { ...options, code: 'wrong-last-sequence' },
    );
    this.expectedLastSequence = expectedLastSequence;
  }
}

/** A durable consumer, stream or bucket that provisioning should have created is missing. */
export class NotProvisionedError extends BusError {
  override readonly name: string = 'NotProvisionedError';
  readonly resource: string;

  constructor(resource: string, options?: ErrorOptions) {
    super(
      'not-provisioned',
      `${resource} does not exist: run \`keytower admin provision\` to create the topology`,
      options,
    );
    this.resource = resource;
  }
}

/**
 * Thrown by a handler when the message may succeed later: the consumer naks it with a
 * delay, `retryAfterMs` when given, otherwise exponential backoff with jitter.
 */
export class RetryableError extends BusError {
  override readonly name: string = 'RetryableError';
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options?: ErrorOptions & { retryAfterMs?: number }) {
    super('retryable', message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/**
 * Thrown by a handler when no redelivery can succeed: the consumer dead-letters the
 * message and terminates it at once.
 */
export class PermanentError extends BusError {
  override readonly name: string = 'PermanentError';

  constructor(message: string, options?: ErrorOptions) {
    super('permanent', message, options);
  }
}

/**
 * Provisioning found a setting that JetStream cannot change on an existing stream,
 * consumer or bucket.
 */
export class ProvisionConflictError extends BusError {
  override readonly name: string = 'ProvisionConflictError';
  readonly resource: string;
  readonly setting: string;
  readonly current: unknown;
  readonly wanted: unknown;

  constructor(
    details: {
      resource: string;
      setting: string;
      current: unknown;
      wanted: unknown;
      detail?: string;
    },
    options?: ErrorOptions,
  ) {
    const reason =
      details.detail === undefined
        ? 'cannot be changed in place'
        : `was rejected by JetStream (${details.detail})`;
    super(
      'provision-conflict',
      `${details.resource}: ${details.setting} ${reason} ` +
        `(current ${JSON.stringify(details.current)}, wanted ${JSON.stringify(details.wanted)}); ` +
        `create a new one and migrate, or delete it first`,
      options,
    );
    this.resource = details.resource;
    this.setting = details.setting;
    this.current = details.current;
    this.wanted = details.wanted;
  }
}

/** A lease is held by another holder whose lease has not expired. */
export class LeaseHeldError extends BusError {
  override readonly name: string = 'LeaseHeldError';
  readonly lease: string;
  readonly holder: string;
  readonly expiresAt: string;

  constructor(lease: string, holder: string, expiresAt: string, options?: ErrorOptions) {
    super('lease-held', `lease ${lease} is held by ${holder} until ${expiresAt}`, options);
    this.lease = lease;
    this.holder = holder;
    this.expiresAt = expiresAt;
  }
}

/** A lease was lost: a renewal failed, or the entry shows another holder. */
export class LeaseLostError extends BusError {
  override readonly name: string = 'LeaseLostError';
  readonly lease: string;

  constructor(lease: string, detail: string, options?: ErrorOptions) {
    super('lease-lost', `lease ${lease} was lost: ${detail}`, options);
    this.lease = lease;
  }
}

export function isBusError(error: unknown): error is BusError {
  return error instanceof BusError;
}
export function isPublishError(error: unknown): error is PublishError {
  return error instanceof PublishError;
}
export function isWrongLastSequenceError(error: unknown): error is WrongLastSequenceError {
  return error instanceof WrongLastSequenceError;
}
export function isNotProvisionedError(error: unknown): error is NotProvisionedError {
  return error instanceof NotProvisionedError;
}
export function isRetryableError(error: unknown): error is RetryableError {
  return error instanceof RetryableError;
}
export function isPermanentError(error: unknown): error is PermanentError {
  return error instanceof PermanentError;
}
export function isProvisionConflictError(error: unknown): error is ProvisionConflictError {
  return error instanceof ProvisionConflictError;
}
export function isLeaseHeldError(error: unknown): error is LeaseHeldError {
  return error instanceof LeaseHeldError;
}
export function isLeaseLostError(error: unknown): error is LeaseLostError {
  return error instanceof LeaseLostError;
}

/** Tells whether JetStream reported a missing stream or consumer. */
export function isNotFound(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError &&
    (error.code === JetStreamApiCodes.ConsumerNotFound ||
      error.code === JetStreamApiCodes.StreamNotFound)
  );
}
