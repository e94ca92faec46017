// Both audit sinks on real servers (NATS 2.15, ClickHouse 18.16, Kafka 4.1.1): records
// flow from source messages through the fenced writer into ClickHouse and the SIEM topic
// while either store is stopped, restarted or frozen. Each test checks that every record
// arrives, none twice (ClickHouse read with FINAL), and that the healthy sink keeps
// delivering while the other store is out.
//
// These tests stop and freeze their stores, so they start private servers instead of
// using the shared test stack.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { createClient } from '@clickhouse/client';
import {
  GENESIS_HASH,
  buildRecord,
  verifyStoredChain,
  type AuditRecord,
} from '@keytower/audit-chain';
import { runAuditWriter } from '@keytower/audit';
import { ClickHouseAuditStore, applySchema, runClickHouseSink } from '@keytower/sink-clickhouse';
import {
  RECORD_ID_HEADER,
  SCHEMA_VERSION_HEADER,
  SiemProducer,
  runKafkaSink,
} from '@keytower/sink-kafka';
import { BUCKETS, DURABLES, STREAMS } from '@keytower/contracts';
import { createLogger, type Logger } from '@keytower/telemetry';
import { Kafka, logLevel } from 'kafkajs';

import {
  publishCommands,
  readAuditRecords,
  startAuditBus,
  streamCount,
  waitFor,
  type AuditBus,
} from './support/audit-bus.ts';
import {
  makeWorkDir,
  removeWorkDir,
  startClickHouse,
  startKafka,
  type ClickHouseServer,
  type KafkaServer,
} from './support/audit-servers.ts';

const SCHEMA_FILE = fileURLToPath(new URL('../../deploy/clickhouse/schema.sql', import.meta.url));
const TOPIC = 'keytower.audit.v1';

/** Log lines of the sinks, kept so tests can count retries. */
class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.lines.push(...chunk.toString().split('\n').filter(Boolean));
    callback();
  }
  count(message: string): number {
    return this.lines.filter((line) => line.includes(`"msg":"${message}"`)).length;
  }
}

interface SiemMessage {
  recordId: string;
  schemaVersion: string;
  key: string | null;
  record: AuditRecord;
}

/** Reads the SIEM topic from the beginning with a new group until `done` returns true or the timeout passes. */
async function readSiemTopic(
  brokers: string[],
  timeoutMs: number,
  done: (messages: SiemMessage[]) => boolean,
): Promise<SiemMessage[]> {
  const kafka = new Kafka({ clientId: 'siem-reader', brokers, logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `siem-reader-${Date.now()}-${Math.random()}` });
  const messages: SiemMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        messages.push({
          recordId: String(message.headers?.[RECORD_ID_HEADER] ?? ''),
          schemaVersion: String(message.headers?.[SCHEMA_VERSION_HEADER] ?? ''),
          key: message.key?.toString() ?? null,
          record: JSON.parse(message.value?.toString() ?? 'null') as AuditRecord,
        });
      },
    });
    await waitFor('the SIEM topic to hold the expected records', timeoutMs, () =>
      done(messages),
    ).catch(() => undefined);
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

function hasAll(ids: readonly string[]): (messages: SiemMessage[]) => boolean {
  return (messages) => {
    const seen = new Set(messages.map((message) => message.recordId));
    return ids.every((id) => seen.has(id));
  };
}

describe('audit sinks', { timeout: 600_000 }, () => {
  let dir: string;
  let stack: AuditBus;
  let clickhouse: ClickHouseServer;
  let kafka: KafkaServer;
  let store: ClickHouseAuditStore;
  let producer: SiemProducer;
  let logs: LogCapture;
  let logger: Logger;
  const stopping = new AbortController();
  const primaryClickHouseStopping = new AbortController();
  const running: Array<Promise<void>> = [];

  before(async () => {
    dir = makeWorkDir('kt-audit-sinks');
    [stack, clickhouse, kafka] = await Promise.all([
      startAuditBus(dir, { ackWaitSeconds: 10 }),
      startClickHouse(dir),
      startKafka(dir),
    ]);

    const schemaClient = createClient({ url: clickhouse.url });
    await applySchema(schemaClient, readFileSync(SCHEMA_FILE, 'utf8'));
    await schemaClient.close();

    const admin = new Kafka({
      clientId: 'sink-test-admin',
      brokers: kafka.brokers,
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: TOPIC, numPartitions: 3, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    await admin.disconnect();

    logs = new LogCapture();
    logger = createLogger({ service: 'audit-sinks-test', level: 'info', destination: logs });
    store = new ClickHouseAuditStore({
      url: clickhouse.url,
      database: 'keytower',
      username: 'default',
      password: '',
      requestTimeoutMs: 5000,
    });
    producer = new SiemProducer({
      brokers: kafka.brokers,
      topic: TOPIC,
      clientId: 'sink-test',
      requestTimeoutMs: 2000,
      connectionTimeoutMs: 1000,
      logger,
    });

    const common = {
      holder: 'test',
      leaseTtlSeconds: 5,
      standbyPollMs: 200,
      logger,
      signal: stopping.signal,
    };
    running.push(runAuditWriter({ ...common, bus: await stack.connect('audit') }));
    running.push(
      runClickHouseSink({
        ...common,
        signal: AbortSignal.any([stopping.signal, primaryClickHouseStopping.signal]),
        bus: await stack.connect('sink-clickhouse'),
        store,
        batchMaxRecords: 100,
        batchMaxWaitMs: 200,
        retryInitialDelayMs: 200,
        retryMaxDelayMs: 2000,
      }),
    );
    running.push(
      runKafkaSink({
        ...common,
        bus: await stack.connect('sink-kafka'),
        producer,
        retryInitialDelayMs: 200,
        retryMaxDelayMs: 2000,
      }),
    );
  });

  after(async () => {
    stopping.abort();
    await Promise.all(running);
    await producer?.close();
    await store?.close();
    await stack?.close();
    await Promise.all([clickhouse?.stop(), kafka?.stop()]);
    removeWorkDir(dir);
  });

  async function recordCount(): Promise<number> {
    return await streamCount(stack.admin, STREAMS.audit);
  }

  test('records identical but for ids are all kept', async () => {
    // Field case: two separate operations whose records differ only in their ids must both
    // be stored, and a retried batch must never show a record twice when read with FINAL.
    const payload = new TextEncoder().encode(
      JSON.stringify({
        type: 'keytower.event.key.tagged.v1',
        subject: 'kt_0000000000000000000000aa',
      }),
    );
    const storedAt = new Date('2026-03-01T00:00:00Z');
    const first = buildRecord({
      source: {
        stream: 'K10_TEST',
        sequence: 1,
        subject: 'kms.evt.v1.key.tagged.kt_0000000000000000000000aa',
      },
      data: payload,
      storedAt,
      sequence: 1,
      prevHash: GENESIS_HASH,
    });
    const second = buildRecord({
      source: {
        stream: 'K10_TEST',
        sequence: 2,
        subject: 'kms.evt.v1.key.tagged.kt_0000000000000000000000aa',
      },
      data: payload,
      storedAt,
      sequence: 2,
      prevHash: first.hash,
    });
    assert.notEqual(first.recordId, second.recordId);

    const before = await store.counts();
    await store.insert([first, second]);
    await store.insert([first, second]);
    await store.insert([second]);

    const rows = await store.rowsById([first.recordId, second.recordId]);
    assert.equal(rows.length, 2, 'both records kept, each once with FINAL');
    assert.deepEqual(
      rows.map((row) => row.record_id),
      [first.recordId, second.recordId],
    );
    const after = await store.counts();
    assert.equal(after.distinct - before.distinct, 2, 'distinct records equal records emitted');
    assert.equal(
      await store.supportsDeduplicationToken(),
      false,
      'ClickHouse 18.16 has no insert_deduplication_token',
    );
  });

  test('chain from writer reaches both sinks', async () => {
    const start = await recordCount();
    await publishCommands(stack.admin, 20, 'baseline');
    await waitFor('20 records', 20_000, async () => (await recordCount()) === start + 20);
    const records = await readAuditRecords(stack.admin);
    const ids = records.map((record) => record.recordId);

    await waitFor(
      'ClickHouse to hold every record',
      20_000,
      async () => (await store.rowsById(ids)).length === ids.length,
    );
    const rows = await store.allRows();
    const chainRows = rows.filter((row) => row.source_stream === STREAMS.auditIn);
    const verification = verifyStoredChain(chainRows);
    assert.ok(verification.ok, JSON.stringify(verification));
    assert.equal(chainRows.length, records.length);

    const messages = await readSiemTopic(kafka.brokers, 30_000, hasAll(ids));
    const byId = new Map(messages.map((message) => [message.recordId, message]));
    for (const record of records) {
      const message = byId.get(record.recordId);
      assert.ok(message, `record ${record.recordId} on the SIEM topic`);
      assert.equal(message.schemaVersion, '1');
      assert.equal(message.key, record.keyId);
      assert.equal(message.record.hash, record.hash);
    }
  });

  test('ClickHouse outage loses nothing', async () => {
    const total = 500;
    const start = await recordCount();
    const startedAt = Date.now();

    await publishCommands(stack.admin, 150, 'before-clickhouse-stop');
    await waitFor('150 new records', 30_000, async () => (await recordCount()) === start + 150);
    const firstIds = (await readAuditRecords(stack.admin))
      .slice(start)
      .map((record) => record.recordId);
    await waitFor(
      '150 records in ClickHouse',
      30_000,
      async () => (await store.rowsById(firstIds)).length === 150,
    );
    await clickhouse.stop();
    const failuresBefore = logs.count('batch insert failed; retrying');

    await publishCommands(stack.admin, total - 150, 'during-clickhouse-stop');
    await waitFor(
      `${total} new records`,
      60_000,
      async () => (await recordCount()) === start + total,
    );
    const records = await readAuditRecords(stack.admin);
    const ids = records.map((record) => record.recordId);
    const newIds = ids.slice(start);

    // The Kafka sink keeps delivering while ClickHouse is down.
    const siem = await readSiemTopic(kafka.brokers, 60_000, hasAll(newIds));
    assert.ok(hasAll(newIds)(siem), 'every new record reached Kafka while ClickHouse was down');
    assert.ok(
      logs.count('batch insert failed; retrying') > failuresBefore,
      'the ClickHouse sink retried',
    );

    await clickhouse.start();
    await waitFor(
      'ClickHouse to catch up',
      120_000,
      async () => (await store.rowsById(newIds).catch(() => [])).length === total,
    );
    const rows = await store.rowsById(newIds);
    assert.equal(rows.length, total, 'every record arrived');
    assert.equal(new Set(rows.map((row) => row.record_id)).size, total, 'none twice with FINAL');
    const chainRows = (await store.allRows()).filter(
      (row) => row.source_stream === STREAMS.auditIn,
    );
    assert.equal(chainRows.length, ids.length);
    const verification = verifyStoredChain(chainRows);
    assert.ok(verification.ok, JSON.stringify(verification));
    console.log(`# clickhouse outage: ${total} records end to end in ${Date.now() - startedAt} ms`);
  });

  test('Kafka outage loses nothing', async () => {
    const start = await recordCount();
    await kafka.stop();
    const failuresBefore = logs.count('kafka send failed; retrying');

    let newIds: string[];
    try {
      await publishCommands(stack.admin, 100, 'during-kafka-stop');
      await waitFor('100 new records', 30_000, async () => (await recordCount()) === start + 100);
      newIds = (await readAuditRecords(stack.admin)).slice(start).map((record) => record.recordId);

      // ClickHouse keeps receiving while Kafka is down.
      await waitFor(
        'ClickHouse to hold the new records',
        30_000,
        async () => (await store.rowsById(newIds)).length === newIds.length,
      );
      await waitFor(
        'the Kafka sink to retry',
        30_000,
        () => logs.count('kafka send failed; retrying') > failuresBefore,
      );
    } finally {
      await kafka.start();
    }

    const siem = await readSiemTopic(kafka.brokers, 90_000, hasAll(newIds));
    const seen = new Set(siem.map((message) => message.recordId));
    assert.deepEqual(
      newIds.filter((id) => !seen.has(id)),
      [],
      'no record id missing on the SIEM topic',
    );
  });

  test('frozen Kafka broker does not stall ClickHouse', async () => {
    const start = await recordCount();
    await kafka.pause();
    const failuresBefore = logs.count('kafka send failed; retrying');
    try {
      await publishCommands(stack.admin, 100, 'during-kafka-freeze');
      await waitFor('100 new records', 30_000, async () => (await recordCount()) === start + 100);
      const newIds = (await readAuditRecords(stack.admin))
        .slice(start)
        .map((record) => record.recordId);

      const clickhouseStarted = Date.now();
      await waitFor(
        'ClickHouse to hold the new records',
        30_000,
        async () => (await store.rowsById(newIds)).length === newIds.length,
      );
      console.log(
        `# frozen kafka: ClickHouse held 100 new records ${Date.now() - clickhouseStarted} ms after the writer`,
      );
      await waitFor(
        'the Kafka sink to time out',
        30_000,
        () => logs.count('kafka send failed; retrying') > failuresBefore,
      );
      const timeouts = logs.lines
        .slice(-200)
        .filter((line) => line.includes('kafka send failed') && /timed out/i.test(line));
      assert.ok(timeouts.length > 0, 'a send failed as a timeout');

      kafka.resume();
      const siem = await readSiemTopic(kafka.brokers, 90_000, hasAll(newIds));
      const seen = new Set(siem.map((message) => message.recordId));
      assert.deepEqual(
        newIds.filter((id) => !seen.has(id)),
        [],
        'every record reached Kafka after the broker resumed',
      );
    } finally {
      kafka.resume();
    }
  });

  test('frozen ClickHouse loses nothing', async () => {
    // A frozen server accepts connections but never responds: the insert times out, is
    // retried, and the timed-out insert may still land after the resume. FINAL must still
    // show each record once.
    const start = await recordCount();
    const failuresBefore = logs.count('batch insert failed; retrying');
    await clickhouse.pause();
    let newIds: string[];
    try {
      await publishCommands(stack.admin, 50, 'during-clickhouse-freeze');
      await waitFor('50 new records', 30_000, async () => (await recordCount()) === start + 50);
      newIds = (await readAuditRecords(stack.admin)).slice(start).map((record) => record.recordId);
      await waitFor(
        'the ClickHouse sink to time out',
        30_000,
        () => logs.count('batch insert failed; retrying') > failuresBefore,
      );
    } finally {
      clickhouse.resume();
    }

    await waitFor(
      'ClickHouse to catch up',
      60_000,
      async () => (await store.rowsById(newIds).catch(() => [])).length === newIds.length,
    );
    const rows = await store.rowsById(newIds);
    assert.equal(
      new Set(rows.map((row) => row.record_id)).size,
      newIds.length,
      'every record once with FINAL',
    );
    const counts = await store.counts();
    console.log(
      `# frozen clickhouse: ${counts.stored} stored rows, ${counts.distinct} distinct under FINAL`,
    );
  });

  test('standby sink takes over the lease', async () => {
    const leases = await stack.admin.kv(BUCKETS.leases);
    // A released lease leaves a delete marker with no value, which reads as no holder.
    const holderOf = async () => {
      const entry = await leases.get(DURABLES.sinkClickhouse);
      return entry?.operation === 'PUT' ? entry.json<{ holder: string }>().holder : undefined;
    };
    const standbyStore = new ClickHouseAuditStore({
      url: clickhouse.url,
      database: 'keytower',
      username: 'default',
      password: '',
      requestTimeoutMs: 5000,
    });
    const standbyStopping = new AbortController();
    const standby = runClickHouseSink({
      bus: await stack.connect('sink-clickhouse'),
      store: standbyStore,
      holder: 'standby',
      leaseTtlSeconds: 5,
      standbyPollMs: 200,
      batchMaxRecords: 100,
      batchMaxWaitMs: 200,
      retryInitialDelayMs: 200,
      retryMaxDelayMs: 2000,
      logger,
      signal: standbyStopping.signal,
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(
        await holderOf(),
        'test',
        'the standby waits while the active sink holds the lease',
      );

      primaryClickHouseStopping.abort();
      await waitFor(
        'the standby to take the lease',
        15_000,
        async () => (await holderOf()) === 'standby',
      );

      const start = await recordCount();
      await publishCommands(stack.admin, 20, 'after-sink-takeover');
      await waitFor('20 new records', 20_000, async () => (await recordCount()) === start + 20);
      const newIds = (await readAuditRecords(stack.admin))
        .slice(start)
        .map((record) => record.recordId);
      await waitFor(
        'the standby to insert the new records',
        20_000,
        async () => (await store.rowsById(newIds)).length === newIds.length,
      );
    } finally {
      standbyStopping.abort();
      await standby;
      await standbyStore.close();
    }
  });
});
