import { DURABLES, STREAMS } from '@keytower/contracts';
import { decodeRecord, type AuditRecord } from '@keytower/audit-chain';
import {
  PermanentError,
  type Bus,
  type BusMessage,
  type Lease,
  runAsLeader,
  type LeaderWork,
} from '@keytower/bus';
import type { Logger } from '@keytower/telemetry';

import { InsertBatcher } from './batcher.ts';
import type { ClickHouseAuditStore } from './store.ts';

/** Settings of {@link runClickHouseSink}. */
export interface ClickHouseSinkOptions {
  bus: Bus;
  store: ClickHouseAuditStore;
  holder: string;
  leaseTtlSeconds: number;
  standbyPollMs: number;
  /** Records per insert at most; also the number of unacked messages the sink works on. */
  batchMaxRecords: number;
  /** Maximum time a record waits for its batch to fill, in milliseconds. */
  batchMaxWaitMs: number;
  retryInitialDelayMs: number;
  retryMaxDelayMs: number;
  logger: Logger;
  signal: AbortSignal;
}

/**
 * Runs the ClickHouse sink until `signal` aborts: while holding the `sink-clickhouse`
 * lease, it consumes `KMS_AUDIT` and inserts the records in batches, acking each message
 * only after ClickHouse confirmed the insert of its batch. While ClickHouse is down the
 * batch is retried with backoff and its messages stay unacked (the consumer keeps them in
 * progress), so nothing is dropped and the backlog drains when ClickHouse returns.
 */
export async function runClickHouseSink(options: ClickHouseSinkOptions): Promise<void> {
  await runAsLeader(
    {
      bus: options.bus,
      name: DURABLES.sinkClickhouse,
      holder: options.holder,
      ttlSeconds: options.leaseTtlSeconds,
      standbyPollMs: options.standbyPollMs,
      logger: options.logger,
      signal: options.signal,
    },
    (lease) => startSink(options, lease),
  );
}

async function startSink(options: ClickHouseSinkOptions, lease: Lease): Promise<LeaderWork> {
  const logger = options.logger.child({ holder: options.holder, fencingToken: lease.fencingToken });
  const batcher = new InsertBatcher<AuditRecord>({
    insert: (records) => options.store.insert(records),
    maxItems: options.batchMaxRecords,
    maxWaitMs: options.batchMaxWaitMs,
    retryInitialDelayMs: options.retryInitialDelayMs,
    retryMaxDelayMs: options.retryMaxDelayMs,
    logger,
  });

  async function handle(message: BusMessage): Promise<void> {
    const record = parseAuditRecord(message, logger);
    await batcher.add(record);
  }

  const consumer = await options.bus.consume({
    stream: STREAMS.audit,
    durable: DURABLES.sinkClickhouse,
    handler: handle,
    concurrency: options.batchMaxRecords,
    logger,
  });
  logger.info(
    { batchMaxRecords: options.batchMaxRecords, batchMaxWaitMs: options.batchMaxWaitMs },
    'clickhouse sink started',
  );

  return {
    async stop() {
      await Promise.all([consumer.stop(), batcher.close()]);
      logger.info('clickhouse sink stopped');
    },
  };
}

/**
 * Decodes and checks the audit record in a `KMS_AUDIT` message. A message that is not a
 * self-consistent record is dead-lettered instead of being stored as evidence.
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
