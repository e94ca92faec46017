/**
 * Audit throughput: how fast the audit writer and both sinks move a backlog of source messages
 * into ClickHouse and onto the Kafka SIEM topic.
 *
 * The writer and sinks are stopped, a burst of commands runs through policy and connector-hsm (so
 * the backlog in `KMS_AUDIT_IN` is the real mix of commands, operations and events), then the
 * sinks and the writer start again. Each sink's rate is its records over the time from the first
 * to the last of them arriving: for ClickHouse as seen by polling with `FINAL` every 100 ms, for
 * Kafka by the message timestamps the producer set. Service start-up is outside that window.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { recordId } from '@keytower/audit-chain';
import type { Bus } from '@keytower/bus';
import type { StackDescriptor } from '@keytower/config';
import { DURABLES, STREAMS } from '@keytower/contracts';
import { queryClickHouse } from './demo-clickhouse.ts';
import { readSiemTopic } from './demo-kafka.ts';
import type { RunningServices } from './demo-services.ts';

/** Arrival of the backlog at one sink. */
export interface SinkArrival {
  records: number;
  /** From the first to the last record arriving, in milliseconds. */
  spanMs: number;
  recordsPerSecond: number;
  /** From the audit writer's start to the last record arriving, in milliseconds. */
  drainMs: number;
}

/** Result of one audit backlog run. */
export interface AuditBacklogResult {
  sourceMessages: number;
  meanRecordBytes: number;
  clickhouse: SinkArrival;
  kafka: SinkArrival;
}

const POLL_INTERVAL_MS = 100;
const SETTLE_MS = 1000;

/** Waits until the audit writer's durable consumer has nothing pending or unacknowledged. */
async function waitForAuditWriterIdle(admin: Bus, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await admin.manager.consumers.info(STREAMS.auditIn, DURABLES.auditWriter);
    if (info.num_pending === 0 && info.num_ack_pending === 0) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `the audit writer still had ${info.num_pending} pending message(s) after ${timeoutMs / 1000} s`,
      );
    }
    await sleep(200);
  }
}

/** Waits until the last sequence of a stream has not changed for a second, and returns it. */
async function settledLastSequence(admin: Bus, stream: string): Promise<number> {
  let last = (await admin.manager.streams.info(stream)).state.last_seq;
  for (;;) {
    await sleep(SETTLE_MS);
    const now = (await admin.manager.streams.info(stream)).state.last_seq;
    if (now === last) {
      return now;
    }
    last = now;
  }
}

async function storedCountAfter(
  descriptor: StackDescriptor,
  afterSequence: number,
): Promise<number> {
  const [row] = await queryClickHouse(
    descriptor,
    `SELECT count() AS records FROM audit_records FINAL WHERE source_stream = '${STREAMS.auditIn}' AND source_sequence > ${afterSequence} FORMAT JSONEachRow`,
  );
  return Number(row?.records ?? 0);
}

/**
 * Runs the backlog measurement. `burst` must run commands through the pipeline and resolve once
 * every one has its terminal status; the audit writer and sinks are stopped meanwhile.
 */
export async function runAuditBacklog(options: {
  descriptor: StackDescriptor;
  admin: Bus;
  services: RunningServices;
  burst: () => Promise<void>;
  timeoutMs: number;
}): Promise<AuditBacklogResult> {
  const { descriptor, admin, services } = options;
  await waitForAuditWriterIdle(admin, options.timeoutMs);
  await services.stopService('audit');
  await services.stopService('sink-clickhouse');
  await services.stopService('sink-kafka');

  const before = (await admin.manager.streams.info(STREAMS.auditIn)).state.last_seq;
  await options.burst();
  const after = await settledLastSequence(admin, STREAMS.auditIn);
  const expectedIds = new Set<string>();
  for (let sequence = before + 1; sequence <= after; sequence += 1) {
    expectedIds.add(recordId(STREAMS.auditIn, sequence));
  }
  const expected = expectedIds.size;

  await services.restartService('sink-clickhouse');
  await services.restartService('sink-kafka');
  const kafkaRead = readSiemTopic(descriptor, {
    groupId: `keytower-bench-${Date.now()}`,
    timeoutMs: options.timeoutMs,
    isComplete: (ids) => [...expectedIds].every((id) => ids.has(id)),
  });
  const writerStarted = Date.now();
  await services.restartService('audit');

  let firstClickHouseAt: number | undefined;
  let lastClickHouseAt: number | undefined;
  const deadline = Date.now() + options.timeoutMs;
  while (Date.now() < deadline) {
    const stored = await storedCountAfter(descriptor, before);
    const now = Date.now();
    if (stored > 0 && firstClickHouseAt === undefined) {
      firstClickHouseAt = now;
    }
    if (stored >= expected) {
      lastClickHouseAt = now;
      break;
    }
    await sleep(POLL_INTERVAL_MS);
  }
  if (firstClickHouseAt === undefined || lastClickHouseAt === undefined) {
    throw new Error(
      `ClickHouse did not receive all ${expected} backlog records within ${options.timeoutMs / 1000} s`,
    );
  }

  const read = await kafkaRead;
  const timestamps = [...expectedIds].map((id) => read.firstTimestamps.get(id));
  const missing = timestamps.filter((value) => value === undefined).length;
  if (missing > 0) {
    throw new Error(
      `${missing} of ${expected} backlog records did not reach Kafka within ${options.timeoutMs / 1000} s`,
    );
  }
  const kafkaTimes = timestamps as number[];
  const firstKafkaAt = Math.min(...kafkaTimes);
  const lastKafkaAt = Math.max(...kafkaTimes);

  const [size] = await queryClickHouse(
    descriptor,
    `SELECT avg(length(canonical)) AS bytes FROM audit_records FINAL WHERE source_stream = '${STREAMS.auditIn}' AND source_sequence > ${before} FORMAT JSONEachRow`,
  );

  return {
    sourceMessages: expected,
    meanRecordBytes: Math.round(Number(size?.bytes ?? 0)),
    clickhouse: arrival(expected, firstClickHouseAt, lastClickHouseAt, writerStarted),
    kafka: arrival(expected, firstKafkaAt, lastKafkaAt, writerStarted),
  };
}

function arrival(
  records: number,
  firstAt: number,
  lastAt: number,
  writerStarted: number,
): SinkArrival {
  // Never below one polling interval, so a backlog that lands in one poll does not divide by zero.
  const spanMs = Math.max(lastAt - firstAt, POLL_INTERVAL_MS);
  return {
    records,
    spanMs,
    recordsPerSecond: (records * 1000) / spanMs,
    drainMs: lastAt - writerStarted,
  };
}
