// Proof that KafkaJS 2.2.4 (unmaintained since 2023) works against a Kafka 4.1.1 KRaft
// broker before the Kafka sink relies on it: topic creation, an idempotent producer with
// acks=all, a consumer group, a broker restart under load, and a frozen broker.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Kafka, Partitioners, logLevel, type Consumer, type Producer } from 'kafkajs';

import {
  makeWorkDir,
  removeWorkDir,
  startKafka,
  type KafkaServer,
} from './support/audit-servers.ts';

function kafkaClient(brokers: string[], requestTimeout = 5000): Kafka {
  return new Kafka({
    clientId: 'keytower-kafka-proof',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    requestTimeout,
    enforceRequestTimeout: true,
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
  });
}

function idempotentProducer(kafka: Kafka): Producer {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
}

// Collects message values of a topic through a consumer group until `expected` distinct
// values arrived (or `until` returns true), or the timeout passed.
async function consumeAll(
  kafka: Kafka,
  topic: string,
  groupId: string,
  expected: number,
  timeoutMs: number,
  until: (values: string[]) => boolean = () => false,
) {
  const consumer: Consumer = kafka.consumer({
    groupId,
    sessionTimeout: 10_000,
    heartbeatInterval: 1000,
  });
  const values: string[] = [];
  const headers: Array<Record<string, string>> = [];
  const keys: string[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });

  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value?.toString() ?? '');
        keys.push(message.key?.toString() ?? '');
        headers.push(
          Object.fromEntries(
            Object.entries(message.headers ?? {}).map(([name, value]) => [name, String(value)]),
          ),
        );
        if (new Set(values).size >= expected || until(values)) {
          resolve();
        }
      },
    });
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  await Promise.race([done, timedOut]);
  clearTimeout(timer);
  await consumer.disconnect();
  return { values, keys, headers };
}

describe('KafkaJS 2.2.4 against Kafka 4.1.1', { timeout: 240_000 }, () => {
  let dir: string;
  let broker: KafkaServer;

  before(async () => {
    dir = makeWorkDir('kt-kafka-proof');
    broker = await startKafka(dir);
  });

  after(async () => {
    await broker?.stop();
    removeWorkDir(dir);
  });

  test('creates and lists topics', async () => {
    const admin = kafkaClient(broker.brokers).admin();
    await admin.connect();
    try {
      const created = await admin.createTopics({
        topics: [{ topic: 'proof.create', numPartitions: 3, replicationFactor: 1 }],
        waitForLeaders: true,
      });
      assert.equal(created, true);

      const topics = await admin.listTopics();
      assert.ok(topics.includes('proof.create'), `topics listed: ${topics.join(', ')}`);

      const metadata = await admin.fetchTopicMetadata({ topics: ['proof.create'] });
      assert.equal(metadata.topics[0]?.partitions.length, 3);

      const again = await admin.createTopics({
        topics: [{ topic: 'proof.create', numPartitions: 3, replicationFactor: 1 }],
      });
      assert.equal(again, false, 'creating an existing topic reports false');
    } finally {
      await admin.disconnect();
    }
  });

  test('produces and consumes in a group', async () => {
    const kafka = kafkaClient(broker.brokers);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: 'proof.group', numPartitions: 3, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    await admin.disconnect();

    const producer = idempotentProducer(kafka);
    await producer.connect();
    try {
      for (let index = 0; index < 300; index += 1) {
        const [metadata] = await producer.send({
          topic: 'proof.group',
          acks: -1,
          messages: [
            {
              key: `key-${index % 7}`,
              value: `message-${index}`,
              headers: { 'record-id': `id-${index}` },
            },
          ],
        });
        assert.equal(metadata?.errorCode, 0);
      }
    } finally {
      await producer.disconnect();
    }

    const received = await consumeAll(kafka, 'proof.group', 'proof-group-1', 300, 30_000);
    assert.equal(new Set(received.values).size, 300);
    assert.equal(received.values.length, 300, 'no message delivered twice');

    // Per-key order: messages of one key share a partition, so the group receives them in send order.
    for (let key = 0; key < 7; key += 1) {
      const ofKey = received.values.filter((_, index) => received.keys[index] === `key-${key}`);
      const numbers = ofKey.map((value) => Number(value.slice('message-'.length)));
      assert.deepEqual(
        numbers,
        [...numbers].sort((left, right) => left - right),
        `order of key-${key}`,
      );
    }
    const firstHeaders = received.headers[received.values.indexOf('message-0')];
    assert.equal(firstHeaders?.['record-id'], 'id-0');
  });

  test('survives a broker restart under load', async () => {
    const kafka = kafkaClient(broker.brokers);
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: 'proof.restart', numPartitions: 1, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    await admin.disconnect();

    const total = 400;
    const producer = idempotentProducer(kafka);
    await producer.connect();
    let failedAttempts = 0;
    let restarted: Promise<void> | undefined;
    const started = Date.now();
    try {
      for (let index = 0; index < total; index += 1) {
        if (index === 150) {
          // Restart in the background while the loop keeps sending.
          restarted = (async () => {
            await broker.stop();
            await broker.start();
          })();
        }
        // A send that fails is repeated, as the sink does: at-least-once, never dropped.
        for (;;) {
          try {
            await producer.send({
              topic: 'proof.restart',
              acks: -1,
              messages: [{ key: 'k', value: `message-${index}` }],
            });
            break;
          } catch {
            failedAttempts += 1;
            await new Promise((resolve) => setTimeout(resolve, 500));
          }
        }
      }
      await restarted;
    } finally {
      await producer.disconnect();
    }
    const elapsedMs = Date.now() - started;

    const received = await consumeAll(kafka, 'proof.restart', 'proof-restart-1', total, 60_000);
    const distinct = new Set(received.values);
    const missing = Array.from({ length: total }, (_, index) => `message-${index}`).filter(
      (value) => !distinct.has(value),
    );
    assert.deepEqual(missing, []);
    assert.ok(
      failedAttempts > 0,
      'the restart made at least one send fail, so the restart happened under load',
    );
    console.log(
      `# restart under load: ${total} sent in ${elapsedMs} ms, ${failedAttempts} failed attempts, ${received.values.length - distinct.size} duplicates`,
    );
  });

  // KafkaJS keeps the sequence number of a timed-out batch for the next batch. The frozen
  // broker later appends the timed-out batch, so the next batch looks like its duplicate:
  // the broker acknowledges it with the earlier offset and never writes it.
  test('reused idempotent producer drops a message', async () => {
    const kafka = kafkaClient(broker.brokers, 2000);
    await createTopic(kafka, 'proof.frozen.reused');

    const producer = idempotentProducer(kafka);
    await producer.connect();
    let acknowledged: string | undefined;
    try {
      await producer.send({
        topic: 'proof.frozen.reused',
        acks: -1,
        messages: [{ value: 'before' }],
      });

      await broker.pause();
      const started = Date.now();
      await assert.rejects(
        producer.send({ topic: 'proof.frozen.reused', acks: -1, messages: [{ value: 'during' }] }),
        /timed out/,
      );
      console.log(`# frozen broker: send rejected after ${Date.now() - started} ms`);
      broker.resume();

      const [metadata] = await producer.send({
        topic: 'proof.frozen.reused',
        acks: -1,
        messages: [{ value: 'after' }],
      });
      acknowledged = metadata?.baseOffset;
      await producer.send({
        topic: 'proof.frozen.reused',
        acks: -1,
        messages: [{ value: 'last' }],
      });
    } finally {
      broker.resume();
      await producer.disconnect();
    }

    const received = await consumeAll(
      kafka,
      'proof.frozen.reused',
      'proof-frozen-reused',
      4,
      15_000,
      (values) => values.includes('last'),
    );
    assert.equal(
      acknowledged,
      '1',
      "'after' was acknowledged with the offset of the timed-out batch",
    );
    assert.deepEqual(received.values, ['before', 'during', 'last']);
  });

  test('fresh producer after timeout loses nothing', async () => {
    const kafka = kafkaClient(broker.brokers, 2000);
    await createTopic(kafka, 'proof.frozen.fresh');

    let producer = idempotentProducer(kafka);
    await producer.connect();
    try {
      await producer.send({
        topic: 'proof.frozen.fresh',
        acks: -1,
        messages: [{ value: 'before' }],
      });

      await broker.pause();
      await assert.rejects(
        producer.send({ topic: 'proof.frozen.fresh', acks: -1, messages: [{ value: 'during' }] }),
        /timed out/,
      );
      broker.resume();

      // What the sink does after any failed send: drop the producer (and its producer id),
      // then send the failed message again from a new one.
      await producer.disconnect();
      producer = idempotentProducer(kafka);
      await producer.connect();
      await producer.send({
        topic: 'proof.frozen.fresh',
        acks: -1,
        messages: [{ value: 'during' }],
      });
      await producer.send({
        topic: 'proof.frozen.fresh',
        acks: -1,
        messages: [{ value: 'after' }],
      });
    } finally {
      broker.resume();
      await producer.disconnect();
    }

    const received = await consumeAll(
      kafka,
      'proof.frozen.fresh',
      'proof-frozen-fresh',
      3,
      15_000,
      (values) => values.includes('after'),
    );
    assert.deepEqual(new Set(received.values), new Set(['before', 'during', 'after']));
    // The timed-out batch was appended after the resume as well, so 'during' may appear twice:
    // consumers de-duplicate by record id.
    assert.ok(received.values.length <= 4, `received ${received.values.join(', ')}`);
  });
});

async function createTopic(kafka: Kafka, topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}
