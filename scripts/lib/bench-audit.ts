/**
 * Audit throughput: how fast the audit writer and both sinks move a backlog of source messages
 * into ClickHouse and onto the Kafka SIEM topic.
 *
 * The writer and sinks are stopped, a burst of commands runs through policy and connector-hsm (so
 * the backlog in `KMS_AUDIT_IN` is the real mix of commands, operations and events), then the
 * sinks and the writer start again. The writer's progress comes from polling the last sequence of
 * `KMS_AUDIT`, ClickHouse's from counting the backlog's rows with `FINAL`, both every 100 ms, and
 * Kafka's from the message timestamps the sink's producer set. Each step's rate is its records
 * over the time from the writer's first appended record to the step's last record, so service
 * start-up is left out and the steps compare directly: the slowest one sets the audit trail's pace.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { recordId } from '@keytower/audit-chain';
import type { Bus } from '@keytower/bus';
import type { StackDescriptor } from '@keytower/config';
import { DURABLES, STREAMS } from '@keytower/contracts';
import { queryClickHouse } from './demo-clickhouse.ts';
import { readSiemTopic } from './demo-kafka.ts';
import type { RunningServices } from './demo-services.ts';

/** Arrival of the backlog at one step: the writer's output stream or a sink. */
export interface SinkArrival {
  records: number;
  /** From the writer's first appended record to this step's last record, in milliseconds. */
  spanMs: number;
  recordsPerSecond: number;
  /** From the audit writer's start to the last record arriving, in milliseconds. */
  drainMs: number;
}

/** Result of one audit backlog run. */
export interface AuditBacklogResult {
  sourceMessages: number;
  meanRecordBytes: number;
  /** Records appended to `KMS_AUDIT` by the writer, which both sinks consume. */
  writer: SinkArrival;
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

interface ArrivalWindow {
  first: number;
  last: number;
}

/**
 * Polls every 100 ms how many backlog records the writer has appended to `KMS_AUDIT` and how many
 * ClickHouse stores, and returns when each saw its first and its last record.
 */
async function pollArrivals(options: {
  descriptor: StackDescriptor;
  admin: Bus;
  sourceAfter: number;
  auditAfter: number;
  expected: number;
  timeoutMs: number;
}): Promise<{ writer: ArrivalWindow; clickhouse: ArrivalWindow }> {
  const writer: Partial<ArrivalWindow> = {};
  const clickhouse: Partial<ArrivalWindow> = {};
  const deadline = Date.now() + options.timeoutMs;

  while (Date.now() < deadline && (writer.last === undefined || clickhouse.last === undefined)) {
    const appended =
      (await options.admin.manager.streams.info(STREAMS.audit)).state.last_seq - options.auditAfter;
    const stored = await storedCountAfter(options.descriptor, options.sourceAfter);
    const now = Date.now();
    for (const [window, count] of [
      [writer, appended],
      [clickhouse, stored],
    ] as const) {
      if (count > 0) {
        window.first ??= now;
      }
      if (count >= options.expected) {
        window.last ??= now;
      }
    }
    await sleep(POLL_INTERVAL_MS);
  }

  if (writer.first === undefined || writer.last === undefined) {
    throw new Error(
      `the audit writer did not append all ${options.expected} backlog records within ${options.timeoutMs / 1000} s`,
    );
  }
  if (clickhouse.first === undefined || clickhouse.last === undefined) {
    throw new Error(
      `ClickHouse did not receive all ${options.expected} backlog records within ${options.timeoutMs / 1000} s`,
    );
  }
  return {
    writer: { first: writer.first, last: writer.last },
    clickhouse: { first: clickhouse.first, last: clickhouse.last },
  };
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
  // Polling starts before the writer does, so the first arrivals are seen when they happen.
  const auditBefore = (await admin.manager.streams.info(STREAMS.audit)).state.last_seq;
  const arrivals = pollArrivals({
    descriptor,
    admin,
    sourceAfter: before,
    auditAfter: auditBefore,
    expected,
    timeoutMs: options.timeoutMs,
  });
  const writerStarted = Date.now();
  await services.restartService('audit');
  const { clickhouse: clickhouseWindow, writer: writerWindow } = await arrivals;

  const read = await kafkaRead;
  const timestamps = [...expectedIds].map((id) => read.firstTimestamps.get(id));
  const missing = timestamps.filter((value) => value === undefined).length;
  if (missing > 0) {
    throw new Error(
      `${missing} of ${expected} backlog records did not reach Kafka within ${options.timeoutMs / 1000} s`,
    );
  }
  const kafkaTimes = timestamps as number[];
  const lastKafkaAt = Math.max(...kafkaTimes);

  const [size] = await queryClickHouse(
    descriptor,
    `SELECT avg(length(canonical)) AS bytes FROM audit_records FINAL WHERE source_stream = '${STREAMS.auditIn}' AND source_sequence > ${before} FORMAT JSONEachRow`,
  );

  return {
    sourceMessages: expected,
    meanRecordBytes: Math.round(Number(size?.bytes ?? 0)),
    writer: arrival(expected, writerWindow.first, writerWindow.last, writerStarted),
    clickhouse: arrival(expected, writerWindow.first, clickhouseWindow.last, writerStarted),
    kafka: arrival(expected, writerWindow.first, lastKafkaAt, writerStarted),
  };
}

/**
 * Computes a step's rate over the time from the writer's first appended record to the step's last
 * record. Every step shares that start, so a sink behind the writer never shows a higher rate.
 */
function arrival(
  records: number,
  writerFirstAt: number,
  lastAt: number,
  writerStarted: number,
): SinkArrival {
  // Never below one polling interval, so a backlog that lands in one poll does not divide by zero.
  const spanMs = Math.max(lastAt - writerFirstAt, POLL_INTERVAL_MS);
  return {
    records,
    spanMs,
    recordsPerSecond: (records * 1000) / spanMs,
    drainMs: lastAt - writerStarted,
  };
}
