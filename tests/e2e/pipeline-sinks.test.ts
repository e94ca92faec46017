// The whole pipeline keeps every audit record while one audit store is down. Policy,
// connector-hsm, the audit writer and both sinks run as their own processes on the test stack
// (`KEYTOWER_STACK_FILE`). One store is stopped by its pid file, 500 `create AES_256` commands run
// through policy and the HSM, and the store starts again. Then every record of those commands must
// arrive: in ClickHouse exactly once under FINAL, on Kafka with no record id missing.
//
// The record-level versions of these faults, with in-process sinks on private servers, live in
// sink-delivery.test.ts. This suite stops servers of the shared test stack, which is safe because
// `npm test` runs the end-to-end suites one at a time, and its `after` brings the stack back up.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { recordId } from '@keytower/audit-chain';
import { connectBus, type Bus } from '@keytower/bus';
import { readStackDescriptor, type StackDescriptor } from '@keytower/config';
import { DURABLES, STREAMS } from '@keytower/contracts';
import { createLogger } from '@keytower/telemetry';

// eslint-disable-next-line @nx/enforce-module-boundaries -- the root scripts are not an Nx project; this suite reuses the benchmark's command loop
import {
  BENCH_ACTOR,
  runPipelineLoop,
  type PipelineLoopResult,
} from '../../scripts/lib/bench-pipeline.ts';
// eslint-disable-next-line @nx/enforce-module-boundaries -- see above
import { queryClickHouse } from '../../scripts/lib/demo-clickhouse.ts';
// eslint-disable-next-line @nx/enforce-module-boundaries -- see above
import { readSiemTopic } from '../../scripts/lib/demo-kafka.ts';
// eslint-disable-next-line @nx/enforce-module-boundaries -- see above
import { connectAdmin } from '../../scripts/lib/demo-nats.ts';
// eslint-disable-next-line @nx/enforce-module-boundaries -- see above
import { startServices, type RunningServices } from '../../scripts/lib/demo-services.ts';
// eslint-disable-next-line @nx/enforce-module-boundaries -- see above
import { REPO_ROOT } from '../../scripts/lib/repo.ts';
// eslint-disable-next-line @nx/enforce-module-boundaries -- see above
import { runStack } from '../../scripts/lib/stack-command.ts';

const COMMANDS = 500;
const CONCURRENCY = 8;
/** Health ports of this suite's services: clear of `npm start`, the bench and the demo suite. */
const HEALTH_PORT_BASE = 17170;
const DELIVERY_TIMEOUT_MS = 180_000;
const NATS_BASE_PORT = 4222;

/** The records one batch of commands caused: every `KMS_AUDIT_IN` position it added. */
interface Batch {
  loop: PipelineLoopResult;
  expectedIds: Set<string>;
  firstSequence: number;
  lastSequence: number;
}

function portOffsetOf(descriptor: StackDescriptor): number {
  return Number(new URL(descriptor.nats.url).port) - NATS_BASE_PORT;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops a stack server by the pid in `.data/<profile>/run/<name>.pid` and waits until it exited. */
async function stopServer(
  descriptor: StackDescriptor,
  name: 'clickhouse' | 'kafka',
): Promise<number> {
  const pidFile = join(REPO_ROOT, '.data', descriptor.profile, 'run', `${name}.pid`);
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
  assert.ok(Number.isInteger(pid), `${pidFile} holds no pid`);
  assert.ok(isAlive(pid), `${name} is not running (pid ${pid} from ${pidFile})`);

  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 60_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL');
    }
    await sleep(200);
  }
  return pid;
}

/**
 * Suspends a stack server with SIGSTOP: its sockets stay open and it sends no responses, like a
 * broker behind a network that drops packets. Returns the pid for `SIGCONT`.
 */
function freezeServer(descriptor: StackDescriptor, name: 'kafka'): number {
  const pidFile = join(REPO_ROOT, '.data', descriptor.profile, 'run', `${name}.pid`);
  const pid = Number.parseInt(readFileSync(pidFile, 'utf8').trim(), 10);
  assert.ok(Number.isInteger(pid), `${pidFile} holds no pid`);
  assert.ok(isAlive(pid), `${name} is not running (pid ${pid} from ${pidFile})`);

  process.kill(pid, 'SIGSTOP');
  return pid;
}

/** Starts whatever server of the stack is stopped; the stack script leaves running ones alone. */
async function restartStack(descriptor: StackDescriptor): Promise<void> {
  const code = await runStack('up', descriptor.profile, portOffsetOf(descriptor));
  assert.equal(code, 0, `stack up --profile ${descriptor.profile} exited with code ${code}`);
}

/** Returns the last sequence of a stream once it has not changed for a second. */
async function settledLastSequence(admin: Bus, stream: string): Promise<number> {
  let last = (await admin.manager.streams.info(stream)).state.last_seq;
  for (;;) {
    await sleep(1000);
    const now = (await admin.manager.streams.info(stream)).state.last_seq;
    if (now === last) {
      return now;
    }
    last = now;
  }
}

/** Returns the audit records a sink's durable consumer has not acknowledged yet. */
async function undelivered(admin: Bus, durable: string): Promise<number> {
  const info = await admin.manager.consumers.info(STREAMS.audit, durable);
  return info.num_pending + info.num_ack_pending;
}

/** Waits until a sink has acknowledged every audit record, and returns what it still had left. */
async function waitUntilDelivered(admin: Bus, durable: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let left = await undelivered(admin, durable);
  while (left > 0 && Date.now() < deadline) {
    await sleep(500);
    left = await undelivered(admin, durable);
  }
  return left;
}

/** Runs the commands and returns the audit record ids they must produce. */
async function runBatch(
  { client, admin }: { client: Bus; admin: Bus },
  label: string,
): Promise<Batch> {
  const before = await settledLastSequence(admin, STREAMS.auditIn);
  const loop = await runPipelineLoop(client, {
    commands: COMMANDS,
    concurrency: CONCURRENCY,
    runId: `${label}-${Date.now().toString(36)}`,
    commandTimeoutMs: 60_000,
  });
  const after = await settledLastSequence(admin, STREAMS.auditIn);

  const expectedIds = new Set<string>();
  for (let sequence = before + 1; sequence <= after; sequence += 1) {
    expectedIds.add(recordId(STREAMS.auditIn, sequence));
  }
  return { loop, expectedIds, firstSequence: before + 1, lastSequence: after };
}

/** Counts rows and distinct record ids under FINAL for a range of source positions. */
async function storedCounts(
  descriptor: StackDescriptor,
  batch: Batch,
): Promise<{ rows: number; distinct: number }> {
  const [row] = await queryClickHouse(
    descriptor,
    `SELECT count() AS rows, uniqExact(record_id) AS distinct_records FROM audit_records FINAL WHERE source_stream = '${STREAMS.auditIn}' AND source_sequence BETWEEN ${batch.firstSequence} AND ${batch.lastSequence} FORMAT JSONEachRow`,
  );
  return { rows: Number(row?.rows ?? 0), distinct: Number(row?.distinct_records ?? 0) };
}

async function waitForClickHouse(
  descriptor: StackDescriptor,
  batch: Batch,
): Promise<{ rows: number; distinct: number }> {
  const deadline = Date.now() + DELIVERY_TIMEOUT_MS;
  let counts = { rows: 0, distinct: 0 };
  while (Date.now() < deadline) {
    try {
      counts = await storedCounts(descriptor, batch);
    } catch {
      // ClickHouse may still be starting; the deadline bounds the wait.
    }
    if (counts.distinct >= batch.expectedIds.size) {
      return counts;
    }
    await sleep(500);
  }
  return counts;
}

/** Returns how many stored records (FINAL) name each key in a range of source positions. */
async function recordsPerKey(
  descriptor: StackDescriptor,
  batch: Batch,
): Promise<Map<string, number>> {
  const rows = await queryClickHouse(
    descriptor,
    `SELECT key_id, count() AS records FROM audit_records FINAL WHERE source_stream = '${STREAMS.auditIn}' AND source_sequence BETWEEN ${batch.firstSequence} AND ${batch.lastSequence} GROUP BY key_id FORMAT JSONEachRow`,
  );
  return new Map(rows.map((row) => [String(row.key_id), Number(row.records)]));
}

/** Returns the key ids of the batch with fewer than a command, an operation and an event stored. */
async function keysMissingRecords(descriptor: StackDescriptor, batch: Batch): Promise<string[]> {
  const perKey = await recordsPerKey(descriptor, batch);
  return batch.loop.keyIds.filter((keyId) => (perKey.get(keyId) ?? 0) < 3);
}

async function readKafka(descriptor: StackDescriptor, batch: Batch): Promise<Set<string>> {
  const read = await readSiemTopic(descriptor, {
    groupId: `keytower-e2e-pipeline-${Date.now()}`,
    timeoutMs: DELIVERY_TIMEOUT_MS,
    isComplete: (ids) => [...batch.expectedIds].every((id) => ids.has(id)),
  });
  return read.recordIds;
}

describe('pipeline with an audit store down', { timeout: 900_000 }, () => {
  let descriptor: StackDescriptor;
  let services: RunningServices | undefined;
  let client: Bus | undefined;
  let admin: Bus | undefined;
  const batches: Batch[] = [];

  before(async () => {
    descriptor = readStackDescriptor();
    services = await startServices({
      descriptor,
      names: ['policy', 'connector-hsm', 'audit', 'sink-clickhouse', 'sink-kafka'],
      healthPortBase: HEALTH_PORT_BASE,
      logDir: join(REPO_ROOT, '.data', descriptor.profile, 'logs', 'e2e-pipeline-sinks'),
      extraEnvironment: { policy: { KEYTOWER_POLICY_ALLOW: `${BENCH_ACTOR}=create` } },
    });
    admin = await connectAdmin(descriptor, 'e2e-pipeline-admin');
    const cli = descriptor.nats.users.cli;
    assert.ok(cli !== undefined, 'the stack descriptor has no cli user');
    client = await connectBus({
      servers: descriptor.nats.url,
      user: cli.user,
      password: cli.password,
      name: 'e2e-pipeline-client',
      logger: createLogger({ service: 'e2e-pipeline', level: 'warn', destination: process.stderr }),
    });
  });

  const connections = (): { client: Bus; admin: Bus } => {
    assert.ok(client !== undefined, 'the client NATS connection was not opened');
    assert.ok(admin !== undefined, 'the admin NATS connection was not opened');
    return { client, admin };
  };

  after(async () => {
    await client?.close();
    await admin?.close();
    await services?.stopAll();
    // Bring back any server a failed test left stopped, so later suites find the whole stack.
    await runStack('up', descriptor.profile, portOffsetOf(descriptor));
  });

  test('ClickHouse down: every record once', async () => {
    await stopServer(descriptor, 'clickhouse');
    let batch: Batch;
    let heldBack: number;
    let otherLeft: number;
    try {
      batch = await runBatch(connections(), 'ch-down');
      heldBack = await undelivered(connections().admin, DURABLES.sinkClickhouse);
      // One store down must not stall the other sink.
      otherLeft = await waitUntilDelivered(connections().admin, DURABLES.sinkKafka, 60_000);
    } finally {
      await restartStack(descriptor);
    }

    batches.push(batch);
    assert.ok(heldBack > 0, 'the sink had nothing waiting, so ClickHouse was not really down');
    assert.equal(otherLeft, 0, 'the Kafka sink fell behind while ClickHouse was down');
    // Each create causes at least its command, its operation and its outcome event.
    assert.ok(
      batch.expectedIds.size >= COMMANDS * 3,
      `only ${batch.expectedIds.size} source messages`,
    );

    const counts = await waitForClickHouse(descriptor, batch);
    assert.equal(counts.distinct, batch.expectedIds.size, 'records missing in ClickHouse');
    assert.equal(counts.rows, counts.distinct, 'a record appears twice under FINAL');
    assert.deepEqual(
      await keysMissingRecords(descriptor, batch),
      [],
      'keys without their command, operation and event records',
    );

    const kafkaIds = await readKafka(descriptor, batch);
    const missingOnKafka = [...batch.expectedIds].filter((id) => !kafkaIds.has(id));
    assert.deepEqual(missingOnKafka, [], 'the Kafka sink lost records while ClickHouse was down');
  });

  test('Kafka down: no record id missing', async () => {
    await stopServer(descriptor, 'kafka');
    let batch: Batch;
    let heldBack: number;
    let otherLeft: number;
    try {
      batch = await runBatch(connections(), 'kafka-down');
      heldBack = await undelivered(connections().admin, DURABLES.sinkKafka);
      // One store down must not stall the other sink.
      otherLeft = await waitUntilDelivered(connections().admin, DURABLES.sinkClickhouse, 60_000);
    } finally {
      await restartStack(descriptor);
    }

    batches.push(batch);
    assert.ok(heldBack > 0, 'the sink had nothing waiting, so Kafka was not really down');
    assert.equal(otherLeft, 0, 'the ClickHouse sink fell behind while Kafka was down');
    assert.ok(
      batch.expectedIds.size >= COMMANDS * 3,
      `only ${batch.expectedIds.size} source messages`,
    );

    const kafkaIds = await readKafka(descriptor, batch);
    const missingOnKafka = [...batch.expectedIds].filter((id) => !kafkaIds.has(id));
    assert.deepEqual(missingOnKafka, [], 'records missing on the SIEM topic');

    const counts = await waitForClickHouse(descriptor, batch);
    assert.equal(
      counts.distinct,
      batch.expectedIds.size,
      'the ClickHouse sink lost records while Kafka was down',
    );
    assert.equal(counts.rows, counts.distinct, 'a record appears twice under FINAL');
    assert.deepEqual(
      await keysMissingRecords(descriptor, batch),
      [],
      'keys without their command, operation and event records',
    );
  });

  // Field case K11: a hung broker, not a refused connection, must not stall key operations.
  test('Kafka frozen: key commands and ClickHouse go on', async () => {
    const pid = freezeServer(descriptor, 'kafka');
    let batch: Batch;
    let heldBack: number;
    let otherLeft: number;
    try {
      batch = await runBatch(connections(), 'kafka-frozen');
      heldBack = await undelivered(connections().admin, DURABLES.sinkKafka);
      otherLeft = await waitUntilDelivered(connections().admin, DURABLES.sinkClickhouse, 60_000);
    } finally {
      process.kill(pid, 'SIGCONT');
    }

    batches.push(batch);
    console.log(
      `# Kafka frozen: ${batch.loop.succeeded} creates, p50 ${Math.round(batch.loop.latency.p50Ms)} ms, p99 ${Math.round(batch.loop.latency.p99Ms)} ms`,
    );
    assert.ok(
      heldBack > 0,
      'the Kafka sink had nothing waiting, so the broker was not really hung',
    );
    assert.equal(otherLeft, 0, 'the ClickHouse sink fell behind while Kafka was hung');

    const leftForKafka = await waitUntilDelivered(
      connections().admin,
      DURABLES.sinkKafka,
      DELIVERY_TIMEOUT_MS,
    );
    assert.equal(leftForKafka, 0, 'the Kafka sink did not catch up after the broker resumed');
    const kafkaIds = await readKafka(descriptor, batch);
    const missingOnKafka = [...batch.expectedIds].filter((id) => !kafkaIds.has(id));
    assert.deepEqual(missingOnKafka, [], 'records missing on the SIEM topic after the hang');
  });

  // Kept apart from the delivery checks, so a failed provider call points here and not at a sink.
  test('every create succeeded under load', () => {
    assert.equal(batches.length, 3, 'an earlier test did not run its batch');
    for (const batch of batches) {
      assert.deepEqual(batch.loop.unsuccessful, {});
      assert.equal(batch.loop.succeeded, COMMANDS);
    }
  });
});
