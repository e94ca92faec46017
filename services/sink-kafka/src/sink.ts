import { setTimeout as sleep } from 'node:timers/promises';

import { DURABLES, STREAMS } from '@keytower/contracts';
import { canonicalRecord, chainHash, type AuditRecord } from '@keytower/audit-chain';
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
 * Parses an audit record from a `KMS_AUDIT` message and checks that its hash matches its
 * body, so a corrupted message is dead-lettered instead of being sent as evidence.
 */
export function parseAuditRecord(message: BusMessage, logger: Logger): AuditRecord {
  let record: AuditRecord;
  let expected: string;
  try {
    record = message.json<AuditRecord>();
    expected = chainHash(record.prevHash, canonicalRecord(record));
  } catch (error) {
    logger.error(
      { err: error, streamSequence: message.streamSequence },
      'audit message is not a valid record',
    );
    throw new PermanentError('audit message is not a valid record', { cause: error });
  }

  if (expected !== record.hash) {
    logger.error(
      { recordId: record.recordId, streamSequence: message.streamSequence },
      'audit record hash does not match its body',
    );
    throw new PermanentError(
      `audit record ${record.recordId} hash mismatch: expected ${expected}, found ${record.hash}`,
    );
  }
  return record;
}
