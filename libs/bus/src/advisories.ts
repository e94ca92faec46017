import type { JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@keytower/telemetry';
import type { Bus } from './connection.ts';
import { publishDeadLetter } from './dead-letter.ts';
import { NotProvisionedError, isNotFound } from './errors.ts';
import { startPullLoop } from './pull.ts';

/** The fields keytower reads from `io.nats.jetstream.advisory.v1.max_deliver`. */
interface MaxDeliveriesAdvisory {
  stream: string;
  consumer: string;
  stream_seq: number;
  deliveries: number;
}

export interface AdvisoryWatchOptions {
  bus: Bus;
  stream: string;
  durable: string;
  advisoryStream: string;
  advisoryDurable: string;
  logger: Logger;
  pullExpiresMs: number;
}

export interface AdvisoryWatch {
  stop(): Promise<void>;
}

const LAST_ERROR_UNKNOWN =
  'the last delivery ended without ack, nak or term (the consumer process may have died)';

function parseAdvisory(message: JsMsg): MaxDeliveriesAdvisory | undefined {
  try {
    const parsed = message.json<Partial<MaxDeliveriesAdvisory>>();
    if (
      typeof parsed.stream === 'string' &&
      typeof parsed.consumer === 'string' &&
      typeof parsed.stream_seq === 'number' &&
      typeof parsed.deliveries === 'number'
    ) {
      return parsed as MaxDeliveriesAdvisory;
    }
  } catch {
    // Handled below as a malformed advisory.
  }
  return undefined;
}

/**
 * Consumes the max-deliveries advisories of one durable and dead-letters each message they
 * name, read back from the stream by sequence, with reason `max-deliveries`. The
 * dead-letter id depends only on stream and sequence, so a message the handler path
 * already dead-lettered is stored once.
 */
export async function watchMaxDeliveries(options: AdvisoryWatchOptions): Promise<AdvisoryWatch> {
  const { bus, stream, durable, advisoryStream, advisoryDurable } = options;
  const logger = options.logger.child({ advisoryDurable });

  let consumer;
  try {
    consumer = await bus.jetstream.consumers.get(advisoryStream, advisoryDurable);
  } catch (error) {
    if (isNotFound(error)) {
      throw new NotProvisionedError(
        `durable consumer ${advisoryDurable} on stream ${advisoryStream}`,
        { cause: error },
      );
    }
    throw error;
  }

  async function dispatch(message: JsMsg): Promise<void> {
    const advisory = parseAdvisory(message);
    if (advisory === undefined || advisory.stream !== stream || advisory.consumer !== durable) {
      logger.warn({ subject: message.subject }, 'unexpected advisory ignored');
      message.term('not a max-deliveries advisory of this durable');
      return;
    }
    const log = logger.child({
      streamSequence: advisory.stream_seq,
      deliveryCount: advisory.deliveries,
    });

    try {
      const stored = await bus.manager.streams.getMessage(stream, { seq: advisory.stream_seq });
      if (stored === null) {
        log.warn('message named by a max-deliveries advisory is no longer in the stream');
        message.ack();
        return;
      }
      const ack = await publishDeadLetter(bus, {
        stream,
        durable,
        subject: stored.subject,
        headers: stored.header,
        data: stored.data,
        streamSequence: stored.seq,
        attempts: advisory.deliveries,
        lastError: LAST_ERROR_UNKNOWN,
        reason: 'max-deliveries',
      });
      message.ack();
      if (ack.duplicate) {
        log.debug('message was already dead-lettered');
      } else {
        log.error({ deadLetterSeq: ack.seq }, 'message dead-lettered after max deliveries');
      }
    } catch (error) {
      message.nak(1_000);
      log.error({ err: error }, 'dead-lettering after max deliveries failed; advisory naked');
    }
  }

  const loop = startPullLoop({
    consumer,
    concurrency: 1,
    dispatch,
    logger,
    expiresMs: options.pullExpiresMs,
  });
  return {
    async stop() {
      await loop.stop();
      await Promise.all(loop.inFlight());
    },
  };
}
