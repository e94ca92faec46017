import { context } from '@opentelemetry/api';
import type { MsgHdrs } from '@nats-io/transport-node';
import type { ConsumerInfo, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@keytower/telemetry';
import { STREAMS, DURABLES } from '@keytower/contracts';
import { watchMaxDeliveries } from './advisories.ts';
import type { Bus } from './connection.ts';
import { publishDeadLetter } from './dead-letter.ts';
import type { DeadLetterReason } from './dead-letter.ts';
import { NotProvisionedError, isNotFound, isPermanentError, isRetryableError } from './errors.ts';
import { startPullLoop } from './pull.ts';
import type { PullLoop } from './pull.ts';
import { extractTraceContext } from './trace.ts';

/** One delivery of a stream message to a handler. */
export interface BusMessage {
  subject: string;
  data: Uint8Array;
  headers: MsgHdrs | undefined;
  /** Parses the payload as JSON. */
  json<T = unknown>(): T;
  /** Value of the `Nats-Msg-Id` header, when the publisher set one. */
  messageId: string | undefined;
  stream: string;
  streamSequence: number;
  /** 1 on the first delivery. */
  deliveryCount: number;
  /** Whether this is the last delivery the consumer's `max_deliver` allows. */
  isLastAttempt: boolean;
  /**
   * Sends an in-progress ack now. The consumer already sends one every third of the ack
   * wait while the handler runs, so handlers rarely need this.
   */
  working(): void;
  /** Aborted when the consumer stops and gives the message back before the handler ends. */
  signal: AbortSignal;
  /** Logger bound to the stream, durable, stream sequence, delivery count and message id. */
  logger: Logger;
}

export type MessageHandler = (message: BusMessage) => Promise<void>;

/** Exponential backoff for naks when the consumer has no `backoff` of its own. */
export interface RetryBackoff {
  initialDelayMs: number;
  maxDelayMs: number;
  multiplier: number;
}

export interface ConsumeOptions {
  bus: Bus;
  stream: string;
  durable: string;
  handler: MessageHandler;
  /** Handlers running at once; defaults to 1. */
  concurrency?: number;
  logger?: Logger;
  backoff?: Partial<RetryBackoff>;
  /** How long `stop()` waits for running handlers before it naks their messages, in ms. */
  stopTimeoutMs?: number;
  /** How long one pull request waits for messages, in milliseconds. */
  pullExpiresMs?: number;
  /** Stream holding the max-deliveries advisories; defaults to `KMS_ADVISORIES`. */
  advisoryStream?: string;
}

export interface RunningConsumer {
  readonly stream: string;
  readonly durable: string;
  /** Stops pulling, waits for running handlers up to the stop timeout, naks the rest. */
  stop(): Promise<void>;
}

const DEFAULT_BACKOFF: RetryBackoff = { initialDelayMs: 1_000, maxDelayMs: 60_000, multiplier: 2 };
const NANOS_PER_MS = 1_000_000;

/**
 * Returns the nak delay for a failed delivery. The error's `retryAfterMs` comes first, then the
 * consumer's own `backoff` for this delivery. Otherwise the delay is exponential with jitter
 * between half and all of the capped value, so replicas do not retry in step.
 */
export function retryDelayMs(
  error: unknown,
  deliveryCount: number,
  consumerBackoffMs: number[],
  backoff: RetryBackoff,
): number {
  if (isRetryableError(error) && error.retryAfterMs !== undefined) {
    return Math.max(0, error.retryAfterMs);
  }
  if (consumerBackoffMs.length > 0) {
    const index = Math.min(deliveryCount - 1, consumerBackoffMs.length - 1);
    return consumerBackoffMs[index] ?? 0;
  }
  const exponential = backoff.initialDelayMs * backoff.multiplier ** Math.max(0, deliveryCount - 1);
  const capped = Math.min(backoff.maxDelayMs, exponential);
  return Math.round(capped / 2 + Math.random() * (capped / 2));
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    return `${error.name}: ${error.message}`;
  }
  return String(error);
}

async function consumerInfo(bus: Bus, stream: string, durable: string): Promise<ConsumerInfo> {
  try {
    return await bus.manager.consumers.info(stream, durable);
  } catch (error) {
    if (isNotFound(error)) {
      throw new NotProvisionedError(`durable consumer ${durable} on stream ${stream}`, {
        cause: error,
      });
    }
    throw error;
  }
}

interface Delivery {
  message: JsMsg;
  abandon: () => void;
}

/**
 * Consumes a durable pull consumer that provisioning created; it never creates or updates
 * consumers.
 *
 * Each delivery runs the handler inside the trace context from its headers, with an
 * in-progress ack every third of the ack wait. Success acks. A {@link RetryableError} (or
 * any other error) naks with a delay. A {@link PermanentError}, or any failure on the last
 * delivery `max_deliver` allows, dead-letters the message to `kms.dlq.v1.<stream>.<durable>`
 * and terminates it. For a consumer with a delivery limit it also consumes
 * `advisories-<durable>`, so a message whose last delivery was never acked, naked or
 * terminated (because the process died) is dead-lettered too.
 */
export async function consume(options: ConsumeOptions): Promise<RunningConsumer> {
  const { bus, stream, durable, handler } = options;
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, received ${concurrency}`);
  }
  const logger = (options.logger ?? bus.logger).child({ stream, durable });
  const backoff: RetryBackoff = { ...DEFAULT_BACKOFF, ...options.backoff };

  const info = await consumerInfo(bus, stream, durable);
  const ackWaitMs = (info.config.ack_wait ?? 30_000 * NANOS_PER_MS) / NANOS_PER_MS;
  const maxDeliver = info.config.max_deliver ?? -1;
  const consumerBackoffMs = (info.config.backoff ?? []).map((nanos) => nanos / NANOS_PER_MS);
  const stopTimeoutMs = options.stopTimeoutMs ?? Math.min(ackWaitMs, 10_000);
  const consumer = await bus.jetstream.consumers.get(stream, durable);

  const deliveries = new Set<Delivery>();

  async function settleFailure(
    message: JsMsg,
    error: unknown,
    isLastAttempt: boolean,
    log: Logger,
  ): Promise<void> {
    const deliveryCount = message.info.deliveryCount;
    if (!isPermanentError(error) && !isLastAttempt) {
      const delayMs = retryDelayMs(error, deliveryCount, consumerBackoffMs, backoff);
      message.nak(delayMs);
      log.warn({ err: error, delayMs }, 'handler failed; message will be redelivered');
      return;
    }

    const reason: DeadLetterReason = 'handler-failed';
    try {
      const ack = await publishDeadLetter(bus, {
        stream,
        durable,
        subject: message.subject,
        headers: message.headers,
        data: message.data,
        streamSequence: message.info.streamSequence,
        attempts: deliveryCount,
        lastError: describeError(error),
        reason,
      });
      message.term(reason);
      log.error(
        { err: error, deadLetterSeq: ack.seq, duplicate: ack.duplicate },
        'message dead-lettered',
      );
    } catch (publishError) {
      // Not terminated, so the message is redelivered, or on its last delivery the server
      // raises the max-deliveries advisory, which dead-letters it later.
      message.nak(retryDelayMs(publishError, deliveryCount, consumerBackoffMs, backoff));
      log.error(
        { err: publishError, handlerError: describeError(error) },
        'dead-letter publish failed; message naked',
      );
    }
  }

  async function dispatch(message: JsMsg): Promise<void> {
    const deliveryCount = message.info.deliveryCount;
    const streamSequence = message.info.streamSequence;
    const isLastAttempt = maxDeliver > 0 && deliveryCount >= maxDeliver;
    const messageId = message.headers?.get('Nats-Msg-Id') || undefined;
    const log = logger.child({ messageId, streamSequence, deliveryCount });

    const abandoned = new AbortController();
    const delivery: Delivery = {
      message,
      abandon: () => abandoned.abort(new Error('consumer stopped before the handler finished')),
    };
    deliveries.add(delivery);
    const heartbeat = setInterval(() => message.working(), Math.max(100, ackWaitMs / 3));

    const busMessage: BusMessage = {
      subject: message.subject,
      data: message.data,
      headers: message.headers,
      json: <T>() => message.json<T>(),
      messageId,
      stream,
      streamSequence,
      deliveryCount,
      isLastAttempt,
      working: () => message.working(),
      signal: abandoned.signal,
      logger: log,
    };

    try {
      const traceContext = extractTraceContext(message.headers);
      await context.with(traceContext, () => handler(busMessage));
      if (abandoned.signal.aborted) {
        return;
      }
      clearInterval(heartbeat);
      const acknowledged = await message.ackAck().catch((error: unknown) => {
        log.warn({ err: error }, 'ack not confirmed; the message may be redelivered');
        return false;
      });
      log.debug({ acknowledged }, 'message handled');
    } catch (error) {
      clearInterval(heartbeat);
      if (abandoned.signal.aborted) {
        log.warn({ err: error }, 'handler failed after the consumer gave its message back');
        return;
      }
      await settleFailure(message, error, isLastAttempt, log);
    } finally {
      clearInterval(heartbeat);
      deliveries.delete(delivery);
    }
  }

  const advisories =
    maxDeliver > 0
      ? await watchMaxDeliveries({
          bus,
          stream,
          durable,
          advisoryStream: options.advisoryStream ?? STREAMS.advisories,
          advisoryDurable: DURABLES.advisories(durable),
          logger,
          pullExpiresMs: options.pullExpiresMs ?? 5_000,
        })
      : undefined;

  const loop: PullLoop = startPullLoop({
    consumer,
    concurrency,
    dispatch,
    logger,
    expiresMs: options.pullExpiresMs ?? 5_000,
  });
  logger.info({ concurrency, ackWaitMs, maxDeliver }, 'consumer started');

  let stopped: Promise<void> | undefined;
  async function stop(): Promise<void> {
    await Promise.all([loop.stop(), advisories?.stop()]);

    const running = loop.inFlight();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), stopTimeoutMs);
    });
    const outcome = await Promise.race([
      Promise.all(running).then(() => 'done' as const),
      timedOut,
    ]);
    clearTimeout(timer);

    if (outcome === 'timeout') {
      for (const delivery of deliveries) {
        delivery.abandon();
        delivery.message.nak();
      }
      logger.warn(
        { naked: deliveries.size, stopTimeoutMs },
        'handlers still running at stop; their messages were naked for redelivery',
      );
    }
    logger.info('consumer stopped');
  }

  return {
    stream,
    durable,
    stop() {
      stopped ??= stop();
      return stopped;
    },
  };
}
