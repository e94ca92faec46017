import { setTimeout as sleep } from 'node:timers/promises';

import { DURABLES, STREAMS } from '@keytower/contracts';
import { decodeRecord, type AuditRecord } from '@keytower/audit-chain';
import {
  PermanentError,
  RetryableError,
  type Bus,
  type BusMessage,
  type Lease,
  runAsLeader,
  type LeaderWork,
} from '@keytower/bus';
import type { Logger } from '@keytower/telemetry';

import type { SiemProducer } from './producer.ts';

/** Settings of {@link runKafkaSink}. */
export interface KafkaSinkOptions {
  bus: Bus;
  producer: SiemProducer;
  holder: string;
  leaseTtlSeconds: number;
  standbyPollMs: number;
  /** First delay after a failed send, doubled after each failure up to `retryMaxDelayMs`. */
  retryInitialDelayMs: number;
  retryMaxDelayMs: number;
  logger: Logger;
  signal: AbortSignal;
}

/**
 * Runs the Kafka sink until `signal` aborts: while holding the `sink-kafka` lease, it
 * consumes `KMS_AUDIT` one message at a time and sends each record to the SIEM topic,
 * acking the message only after Kafka confirmed it. A failed or timed-out send is retried
 * with backoff while the message stays in progress, so nothing is acked unsent.
 */
export async function runKafkaSink(options: KafkaSinkOptions): Promise<void> {
  await runAsLeader(
    {
      bus: options.bus,
      name: DURABLES.sinkKafka,
      holder: options.holder,
      ttlSeconds: options.leaseTtlSeconds,
      standbyPollMs: options.standbyPollMs,
      logger: options.logger,
      signal: options.signal,
    },
    (lease) => startSink(options, lease),
  );
}

async function startSink(options: KafkaSinkOptions, lease: Lease): Promise<LeaderWork> {
  const logger = options.logger.child({ holder: options.holder, fencingToken: lease.fencingToken });
  const stopping = new AbortController();

  async function handle(message: BusMessage): Promise<void> {
    const record = parseAuditRecord(message, logger);
    const giveUp = AbortSignal.any([message.signal, stopping.signal, lease.lost]);
    let delayMs = options.retryInitialDelayMs;

    for (let attempt = 1; ; attempt += 1) {
      try {
        await options.producer.send(record);
        if (attempt > 1) {
          logger.info({ recordId: record.recordId, attempt }, 'kafka send succeeded after retries');
        }
        return;
      } catch (error) {
        if (giveUp.aborted) {
          throw new RetryableError('kafka send abandoned: the sink is stopping', { cause: error });
        }
        logger.warn(
          { err: error, recordId: record.recordId, attempt, delayMs },
          'kafka send failed; retrying',
        );
        await sleep(delayMs, undefined, { signal: giveUp }).catch(() => undefined);
        delayMs = Math.min(delayMs * 2, options.retryMaxDelayMs);
      }
    }
  }

  // One message at a time keeps per-key order on the topic.
  const consumer = await options.bus.consume({
    stream: STREAMS.audit,
    durable: DURABLES.sinkKafka,
    handler: handle,
    concurrency: 1,
    logger,
  });
  logger.info('kafka sink started');

  return {
    async stop() {
      stopping.abort();
      await consumer.stop();
      logger.info('kafka sink stopped');
    },
  };
}

/**
 * Decodes and checks the audit record in a `KMS_AUDIT` message. A message that is not a
 * self-consistent record is dead-lettered instead of being sent as evidence.
 */
function parseAuditRecord(message: BusMessage, logger: Logger): AuditRecord {
  try {
    return decodeRecord(message.data);
  } catch (error) {
    logger.error(
      { err: error, streamSequence: message.streamSequence },
      'invalid audit record dead-lettered',
    );
    throw new PermanentError(
      `invalid audit record at ${STREAMS.audit} sequence ${message.streamSequence}`,
      { cause: error },
    );
  }
}
