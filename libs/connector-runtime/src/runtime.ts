import {
  DURABLES,
  STREAMS,
  buildEnvelope,
  deriveEventId,
  messageTypes,
  parseMessage,
  subjects,
} from '@keytower/contracts';
import type { Envelope, OperationData, OperationFailedEvent } from '@keytower/contracts';
import { PermanentError, RetryableError } from '@keytower/bus';
import type {
  Bus,
  BusMessage,
  MessageHandler,
  PublishResult,
  RunningConsumer,
} from '@keytower/bus';
import { isProviderError, isTransportError } from '@keytower/provider';
import type { KeyProvider } from '@keytower/provider';
import type { Logger } from '@keytower/telemetry';

import { CircuitBreaker } from './circuit-breaker.ts';
import { performOperation } from './dispatch.ts';
import type { Outcome } from './dispatch.ts';
import { RetryPolicy } from './retry-policy.ts';
import type { RetryDecision } from './retry-policy.ts';

/** Options of {@link createOperationHandler} and {@link startConnectorRuntime}. */
export interface ConnectorRuntimeOptions {
  bus: Bus;
  provider: KeyProvider;
  logger: Logger;
  retryPolicy?: RetryPolicy;
  circuitBreaker?: CircuitBreaker;
  /** Operations handled at once; defaults to 1. */
  concurrency?: number;
  /**
   * Called after the provider call returned and before the outcome is published. Only the
   * test-only crash point uses it, to prove that a redelivery after a crash makes no second key.
   */
  afterProviderCall?: (operation: OperationData) => void;
}

/** A running connector: its durable consumer and its circuit breaker. */
export interface ConnectorRuntime {
  readonly consumer: RunningConsumer;
  readonly circuitBreaker: CircuitBreaker;
  /** Stops pulling operations and waits for running ones (see {@link RunningConsumer.stop}). */
  stop(): Promise<void>;
}

function actorOf(provider: KeyProvider): string {
  return `system:connector-${provider.provider}`;
}

function sourceOf(provider: KeyProvider): string {
  return `keytower/connector-${provider.provider}`;
}

async function publishOutcome(
  options: ConnectorRuntimeOptions,
  envelope: Envelope,
  operation: OperationData,
  outcome: Outcome,
): Promise<PublishResult> {
  const type = messageTypes.keyEvent(outcome.event);
  const event = buildEnvelope({
    id: deriveEventId(operation.operationId, type),
    type,
    subject: operation.keyId,
    data: {
      keyId: operation.keyId,
      commandId: operation.commandId,
      operationId: operation.operationId,
      provider: operation.provider,
      sequence: operation.sequence,
      native: outcome.native,
      ...outcome.fields,
    },
    actor: actorOf(options.provider),
    source: sourceOf(options.provider),
    correlationid: envelope.correlationid,
    causationid: envelope.id,
  });
  return options.bus.publish(subjects.keyEvent(outcome.event, operation.keyId), event);
}

async function publishFailure(
  options: ConnectorRuntimeOptions,
  envelope: Envelope,
  operation: OperationData,
  error: unknown,
  decision: Extract<RetryDecision, { retry: false }>,
): Promise<PublishResult> {
  const type = messageTypes.operationFailed;
  const message = error instanceof Error && error.message !== '' ? error.message : String(error);
  const data: OperationFailedEvent = {
    keyId: operation.keyId,
    commandId: operation.commandId,
    operationId: operation.operationId,
    provider: operation.provider,
    action: operation.action,
    sequence: operation.sequence,
    error: { code: decision.code, message, retryable: decision.retryable },
  };
  const event = buildEnvelope({
    id: deriveEventId(operation.operationId, type),
    type,
    subject: operation.keyId,
    data,
    actor: actorOf(options.provider),
    source: sourceOf(options.provider),
    correlationid: envelope.correlationid,
    causationid: envelope.id,
  });
  return options.bus.publish(subjects.operationFailed(operation.keyId), event);
}

function readOperation(
  message: BusMessage,
  provider: KeyProvider,
): { envelope: Envelope; operation: OperationData } {
  const parsed = parseMessage(message.data);
  if (!parsed.ok) {
    // Operations come only from policy, so a malformed one is a contract bug: dead-letter it.
    throw new PermanentError(
      `operation on ${message.subject} does not match the contracts: ${parsed.error.message}`,
    );
  }
  if (!parsed.message.type.startsWith('keytower.operation.key.')) {
    throw new PermanentError(
      `message on ${message.subject} has type ${parsed.message.type}, expected a key operation`,
    );
  }
  const operation = parsed.message.data as OperationData;
  if (operation.provider !== provider.provider) {
    throw new PermanentError(
      `operation ${operation.operationId} is for provider ${operation.provider}, but this connector serves ${provider.provider}`,
    );
  }
  return { envelope: parsed.message, operation };
}

/**
 * Returns the handler that performs one operation message: parse it, call the adapter inside a
 * logger carrying the operation's ids, publish the outcome event, and only then return so the
 * bus acks. Event ids derive from the operation id, so a redelivered operation publishes a
 * duplicate that JetStream drops. Retryable provider errors are thrown as
 * {@link RetryableError} for a delayed nak; any other failure, or the last attempt, publishes
 * `operation.failed` and returns.
 */
export function createOperationHandler(options: ConnectorRuntimeOptions): {
  handler: MessageHandler;
  circuitBreaker: CircuitBreaker;
  retryPolicy: RetryPolicy;
} {
  const retryPolicy = options.retryPolicy ?? new RetryPolicy();
  const circuitBreaker = options.circuitBreaker ?? new CircuitBreaker();
  const { provider } = options;

  const handler: MessageHandler = async (message) => {
    const { envelope, operation } = readOperation(message, provider);
    const log = message.logger.child({
      commandId: operation.commandId,
      operationId: operation.operationId,
      keyId: operation.keyId,
      provider: operation.provider,
      action: operation.action,
    });

    if (!circuitBreaker.tryAcquire()) {
      // NOTE: each delayed nak uses one of the consumer's max_deliver attempts, so an outage
      // longer than the attempts allow dead-letters the operation.
      const delayMs = Math.max(
        circuitBreaker.remainingCoolDownMs(),
        retryPolicy.options.initialDelayMs,
      );
      log.warn({ delayMs, attempt: message.deliveryCount }, 'circuit open; operation delayed');
      throw new RetryableError(`circuit open for provider ${provider.provider}`, {
        retryAfterMs: delayMs,
      });
    }

    log.info({ attempt: message.deliveryCount }, 'operation started');
    let outcome: Outcome;
    try {
      outcome = await performOperation(provider, operation, message.signal);
    } catch (error) {
      if (isTransportError(error)) {
        circuitBreaker.recordFailure();
      } else if (isProviderError(error)) {
        circuitBreaker.recordSuccess();
      } else {
        circuitBreaker.recordNeutral();
      }

      const decision = retryPolicy.decide(error, message.deliveryCount);
      if (decision.retry && !message.isLastAttempt) {
        log.warn(
          {
            err: error,
            code: decision.code,
            delayMs: decision.delayMs,
            attempt: message.deliveryCount,
          },
          'operation failed; retrying',
        );
        throw new RetryableError(`operation ${operation.operationId} failed: ${decision.code}`, {
          cause: error,
          retryAfterMs: decision.delayMs,
        });
      }

      const final = decision.retry
        ? {
            retry: false as const,
            code: decision.code,
            reason: `last delivery: ${decision.reason}`,
            retryable: true,
          }
        : decision;
      const ack = await publishFailure(options, envelope, operation, error, final);
      log.error(
        {
          err: error,
          code: final.code,
          retryable: final.retryable,
          duplicate: ack.duplicate,
          eventSeq: ack.seq,
        },
        'operation failed',
      );
      return;
    }

    circuitBreaker.recordSuccess();
    options.afterProviderCall?.(operation);

    const ack = await publishOutcome(options, envelope, operation, outcome);
    log.info(
      {
        event: outcome.event,
        alreadyDone: outcome.alreadyDone,
        duplicate: ack.duplicate,
        eventSeq: ack.seq,
      },
      ack.duplicate ? 'operation outcome already published' : 'operation succeeded',
    );
  };

  return { handler, circuitBreaker, retryPolicy };
}

/** Consumes the `connector-<provider>` durable on KMS_OPERATIONS with the operation handler. */
export async function startConnectorRuntime(
  options: ConnectorRuntimeOptions,
): Promise<ConnectorRuntime> {
  const { handler, circuitBreaker } = createOperationHandler(options);
  const consumer = await options.bus.consume({
    stream: STREAMS.operations,
    durable: DURABLES.connector(options.provider.provider),
    handler,
    concurrency: options.concurrency ?? 1,
    logger: options.logger,
  });
  options.logger.info({ durable: consumer.durable }, 'connector consuming operations');
  return { consumer, circuitBreaker, stop: () => consumer.stop() };
}
