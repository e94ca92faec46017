import { BUCKETS, DURABLES, STREAMS, subjects } from '@keytower/contracts';
import {
  GENESIS_HASH,
  buildRecord,
  decodeRecord,
  type AuditRecord,
  type ChainHead,
} from '@keytower/audit-chain';
import {
  RetryableError,
  isWrongLastSequenceError,
  type Bus,
  type BusMessage,
  type Lease,
  runAsLeader,
  type LeaderWork,
} from '@keytower/bus';
import type { Logger } from '@keytower/telemetry';

/** Key of the chain head in the `kms_audit_head` bucket. */
export const HEAD_KEY = 'chain';

/** Settings of {@link runAuditWriter}. */
export interface AuditWriterOptions {
  bus: Bus;
  /** Id of this instance among writer candidates, for example `<host>-<pid>`. */
  holder: string;
  leaseTtlSeconds: number;
  standbyPollMs: number;
  logger: Logger;
  signal: AbortSignal;
  /**
   * Test-only hook called after the lease check and right before a record is appended.
   * Fault tests use it to freeze the process at the worst moment.
   */
  beforeAppend?: (record: AuditRecord) => void;
}

/**
 * Runs the single fenced audit writer until `signal` aborts.
 *
 * Only the lease holder writes. For each message of `KMS_AUDIT_IN`, in stream order, it
 * appends one chained record to `KMS_AUDIT` with the expected last sequence of that stream,
 * then moves the chain head in `kms_audit_head` by compare-and-set, then acks. A writer
 * that was paused past its lease finds its append rejected by the expected-last-sequence
 * check, because the new writer has appended since, so the chain cannot fork.
 */
export async function runAuditWriter(options: AuditWriterOptions): Promise<void> {
  const { bus, logger } = options;
  await runAsLeader(
    {
      bus,
      name: DURABLES.auditWriter,
      holder: options.holder,
      ttlSeconds: options.leaseTtlSeconds,
      standbyPollMs: options.standbyPollMs,
      logger,
      signal: options.signal,
    },
    (lease) => startWriting(options, lease),
  );
}

type KV = Awaited<ReturnType<Bus['kv']>>;

interface HeadState {
  head: ChainHead;
  /** KV revision of the head entry, 0 when absent. */
  revision: number;
}

async function startWriting(options: AuditWriterOptions, lease: Lease): Promise<LeaderWork> {
  const { bus } = options;
  const logger = options.logger.child({ holder: options.holder, fencingToken: lease.fencingToken });
  const kv = await bus.kv(BUCKETS.auditHead);
  const state = await resumeHead(bus, kv, lease, options.holder, logger);

  async function handle(message: BusMessage): Promise<void> {
    if (!lease.held) {
      throw new RetryableError('audit append skipped: the audit-writer lease expired or was lost');
    }
    if (message.streamSequence <= state.head.sourceSequence) {
      // A redelivery of a message that is already in the chain: ack without a second record.
      logger.debug({ sourceSequence: message.streamSequence }, 'source message already recorded');
      return;
    }

    const record = buildRecord({
      source: {
        stream: message.stream,
        sequence: message.streamSequence,
        subject: message.subject,
      },
      data: message.data,
      // NOTE: the bus does not expose the JetStream store time of a message, so a source
      // message without a valid envelope `time` gets the time it was recorded instead.
      storedAt: new Date(),
      sequence: state.head.sequence + 1,
      prevHash: state.head.hash,
    });
    options.beforeAppend?.(record);

    const appended = await append(bus, record, state.head.auditStreamSequence).catch(
      (error: unknown) => {
        if (isWrongLastSequenceError(error)) {
          logger.error(
            {
              err: error,
              recordId: record.recordId,
              expectedLastSequence: state.head.auditStreamSequence,
            },
            'audit append rejected: another writer appended; stopping',
          );
          void lease.release();
          throw new RetryableError('audit append rejected by the expected last sequence', {
            cause: error,
          });
        }
        throw error;
      },
    );
    if (appended.duplicate) {
      // The stream already contains this record id, so the head is stale: stop and let the
      // next leader resume from the stream.
      logger.error(
        { recordId: record.recordId, seq: appended.seq },
        'audit record already in the stream; stopping to resume from it',
      );
      void lease.release();
      throw new RetryableError('audit record already appended by another writer');
    }

    const next: ChainHead = {
      sequence: record.sequence,
      hash: record.hash,
      recordId: record.recordId,
      sourceStream: record.source.stream,
      sourceSequence: record.source.sequence,
      auditStreamSequence: appended.seq,
      fencingToken: lease.fencingToken,
      writer: options.holder,
      updatedAt: new Date().toISOString(),
    };
    try {
      state.revision = await kv.update(HEAD_KEY, encodeHead(next), state.revision);
      state.head = next;
    } catch (error) {
      // The record is in the stream; the next leader resumes from the stream's last record.
      logger.error({ err: error, recordId: record.recordId }, 'audit head update failed; stopping');
      void lease.release();
      throw new RetryableError('audit head update failed', { cause: error });
    }
    logger.debug(
      {
        sequence: record.sequence,
        recordId: record.recordId,
        sourceSequence: record.source.sequence,
      },
      'audit record appended',
    );
  }

  const consumer = await bus.consume({
    stream: STREAMS.auditIn,
    durable: DURABLES.auditWriter,
    handler: handle,
    concurrency: 1,
    logger,
  });
  logger.info(
    { sequence: state.head.sequence, sourceSequence: state.head.sourceSequence },
    'audit writer started',
  );
  return {
    async stop() {
      await consumer.stop();
      logger.info({ sequence: state.head.sequence }, 'audit writer stopped');
    },
  };
}

// bus.publish takes the Nats-Msg-Id from `id` and serializes with JSON.stringify, which calls
// toJSON, so the stored message is exactly the record and its message id is the record id.
async function append(bus: Bus, record: AuditRecord, expectLastSequence: number) {
  const message = { id: record.recordId, toJSON: () => record };
  return await bus.publish(subjects.auditRecord, message, {
    expectLastSequence,
    headers: { 'Keytower-Audit-Sequence': String(record.sequence) },
  });
}

/**
 * Reads the chain head and reconciles it with the last record of `KMS_AUDIT`. A writer
 * that stopped between appending and moving the head left the stream one record ahead,
 * so the stream's last record wins. The reconciled head is stored with this writer's
 * fencing token before anything is appended.
 */
async function resumeHead(
  bus: Bus,
  kv: KV,
  lease: Lease,
  holder: string,
  logger: Logger,
): Promise<HeadState> {
  const entry = await kv.get(HEAD_KEY);
  const stored =
    entry !== null && entry.operation === 'PUT'
      ? (entry.json<ChainHead>() as ChainHead)
      : undefined;
  let revision = stored === undefined ? 0 : (entry?.revision ?? 0);
  let head: ChainHead = stored ?? {
    sequence: 0,
    hash: GENESIS_HASH,
    recordId: null,
    sourceStream: STREAMS.auditIn,
    sourceSequence: 0,
    auditStreamSequence: 0,
    fencingToken: 0,
    writer: holder,
    updatedAt: new Date().toISOString(),
  };

  if (head.fencingToken > lease.fencingToken) {
    throw new Error(
      `audit writer start failed: the head was written with fencing token ${head.fencingToken}, newer than ours`,
    );
  }

  const info = await bus.manager.streams.info(STREAMS.audit);
  const lastSeq = info.state.last_seq;
  if (lastSeq < head.auditStreamSequence) {
    throw new Error(
      `audit writer start failed: ${STREAMS.audit} ends at sequence ${lastSeq} but the head points at ${head.auditStreamSequence}`,
    );
  }
  if (lastSeq > head.auditStreamSequence) {
    const last = await bus.manager.streams.getMessage(STREAMS.audit, { seq: lastSeq });
    if (last === null) {
      throw new Error(`audit writer start failed: ${STREAMS.audit} message ${lastSeq} not found`);
    }
    // Only a valid record that extends the stored head is trusted. Anything else in the
    // record stream means it was written by something other than this writer, so the
    // writer stops here instead of chaining onto it.
    let record: AuditRecord;
    try {
      record = decodeRecord(last.data);
    } catch (error) {
      throw new Error(
        `audit writer start failed: message ${lastSeq} of ${STREAMS.audit} is not a valid audit record`,
        { cause: error },
      );
    }
    const extendsHead = record.sequence === head.sequence + 1 && record.prevHash === head.hash;
    if (stored !== undefined && !extendsHead) {
      throw new Error(
        `audit writer start failed: the last record in ${STREAMS.audit} (sequence ${record.sequence}) does not extend the head (sequence ${head.sequence})`,
      );
    }
    logger.warn(
      { headSequence: head.sequence, streamRecordSequence: record.sequence },
      'audit head behind the record stream; resuming from the last record',
    );
    head = {
      ...head,
      sequence: record.sequence,
      hash: record.hash,
      recordId: record.recordId,
      sourceStream: record.source.stream,
      sourceSequence: record.source.sequence,
      auditStreamSequence: lastSeq,
    };
  }

  head = {
    ...head,
    fencingToken: lease.fencingToken,
    writer: holder,
    updatedAt: new Date().toISOString(),
  };
  revision =
    revision === 0
      ? await kv.create(HEAD_KEY, encodeHead(head))
      : await kv.update(HEAD_KEY, encodeHead(head), revision);
  return { head, revision };
}

function encodeHead(head: ChainHead): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(head));
}
