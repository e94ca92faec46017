import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { context, trace, TraceFlags } from '@opentelemetry/api';
import { startTelemetry } from '@keytower/telemetry';
import type { Telemetry } from '@keytower/telemetry';
import type { DeadLetter } from '@keytower/contracts';
import {
  DEAD_LETTER_TYPE,
  PermanentError,
  RetryableError,
  connectBus,
  deadLetterId,
  isNotProvisionedError,
  provision,
} from '../src/index.ts';
import type { Bus, BusMessage, RunningConsumer } from '../src/index.ts';
import { natsTarget } from './support/nats-server.ts';
import type { NatsTarget } from './support/nats-server.ts';
import { memoryLogger, readDeadLetters, sleep, testEnvelope, waitFor } from './support/helpers.ts';
import { workTopology } from './support/topology.ts';
import type { WorkTopology } from './support/topology.ts';

const FAST_BACKOFF = { initialDelayMs: 50, maxDelayMs: 200 };

describe('consume', () => {
  let target: NatsTarget;
  let bus: Bus;
  let telemetry: Telemetry;
  const { logger, lines } = memoryLogger();

  before(async () => {
    telemetry = startTelemetry({ service: 'bus-test' });
    target = await natsTarget();
    bus = await connectBus({
      servers: target.url,
      user: target.user,
      password: target.password,
      name: 'consume-test',
      logger,
    });
  });

  after(async () => {
    await bus.close();
    await target.server?.destroy();
    await telemetry.shutdown();
  });

  async function withWork(
    label: string,
    settings: Parameters<typeof workTopology>[1],
    body: (work: WorkTopology) => Promise<void>,
  ): Promise<void> {
    const work = workTopology(label, settings);
    await provision(bus.connection, work.topology, { logger });
    try {
      await body(work);
    } finally {
      await work.cleanup(bus);
    }
  }

  test('missing durable names the provision command', async () => {
    await assert.rejects(
      bus.consume({
        stream: 'KMS_NO_SUCH_STREAM',
        durable: 'no-such-durable',
        handler: async () => {},
      }),
      (error: unknown) => {
        assert.ok(isNotProvisionedError(error));
        assert.match(error.message, /no-such-durable/);
        assert.match(error.message, /keytower admin provision/);
        return true;
      },
    );
  });

  test('nak is redelivered', async () => {
    await withWork('nak', { maxDeliver: 3 }, async (work) => {
      const deliveries: number[] = [];
      const consumer = await bus.consume({
        stream: work.stream,
        durable: work.durable,
        backoff: FAST_BACKOFF,
        handler: async (message) => {
          deliveries.push(message.deliveryCount);
          if (message.deliveryCount === 1) {
            throw new RetryableError('provider busy', { retryAfterMs: 100 });
          }
        },
      });
      try {
        await bus.publish(work.subject('a'), testEnvelope({ n: 1 }));
        await waitFor('second delivery', () => (deliveries.length >= 2 ? true : undefined));
        await sleep(300);
        assert.deepEqual(deliveries, [1, 2]);
        const info = await bus.manager.consumers.info(work.stream, work.durable);
        assert.equal(info.num_ack_pending, 0);
        assert.equal(info.num_pending, 0);
      } finally {
        await consumer.stop();
      }
    });
  });

  test('exhausted message is dead-lettered and consumer moves on', async () => {
    // Field case: three deliveries, the provider call always times out.
    await withWork('k09', { maxDeliver: 3 }, async (work) => {
      const handled: string[] = [];
      const failing = testEnvelope({ n: 'always-fails' });
      const healthy = testEnvelope({ n: 'fine' });
      const consumer = await bus.consume({
        stream: work.stream,
        durable: work.durable,
        backoff: FAST_BACKOFF,
        handler: async (message) => {
          const envelope = message.json<{ id: string }>();
          if (envelope.id === failing.id) {
            throw new RetryableError('provider call timed out after 5000 ms');
          }
          handled.push(envelope.id);
        },
      });
      try {
        const published = await bus.publish(work.subject('k09'), failing);
        await bus.publish(work.subject('k09'), healthy);

        const [deadLetter] = await waitFor('dead letter', async () => {
          const found = await readDeadLetters(bus, work.stream, work.durable);
          return found.length > 0 ? found : undefined;
        });
        assert.ok(deadLetter);
        const data = deadLetter.data as DeadLetter;
        assert.equal(deadLetter.type, DEAD_LETTER_TYPE);
        assert.equal(deadLetter.id, deadLetterId(work.stream, published.seq));
        assert.equal(deadLetter.causationid, failing.id);
        assert.equal(data.reason, 'handler-failed');
        assert.equal(data.attempts, 3);
        assert.match(data.lastError, /RetryableError: provider call timed out/);
        assert.equal(data.originalSubject, work.subject('k09'));
        assert.equal(data.originalStream, work.stream);
        assert.equal(data.originalSequence, published.seq);
        assert.equal(data.durable, work.durable);
        assert.deepEqual(JSON.parse(Buffer.from(data.payloadBase64, 'base64').toString()), failing);
        assert.deepEqual(data.headers['Nats-Msg-Id'], [failing.id]);

        await waitFor('healthy message handled', () =>
          handled.includes(healthy.id) ? true : undefined,
        );
        const after = testEnvelope({ n: 'after' });
        await bus.publish(work.subject('k09'), after);
        await waitFor('later message handled', () =>
          handled.includes(after.id) ? true : undefined,
        );
        assert.equal((await readDeadLetters(bus, work.stream, work.durable)).length, 1);
      } finally {
        await consumer.stop();
      }
    });
  });

  test('permanent error dead-letters on first delivery', async () => {
    await withWork('permanent', { maxDeliver: 5 }, async (work) => {
      const deliveries: number[] = [];
      const consumer = await bus.consume({
        stream: work.stream,
        durable: work.durable,
        handler: async (message) => {
          deliveries.push(message.deliveryCount);
          throw new PermanentError('data.algorithm: expected one of "AES_256", received "DES"');
        },
      });
      try {
        await bus.publish(work.subject('p'), testEnvelope({}));
        const [deadLetter] = await waitFor('dead letter', async () => {
          const found = await readDeadLetters(bus, work.stream, work.durable);
          return found.length > 0 ? found : undefined;
        });
        const data = deadLetter?.data as DeadLetter;
        assert.equal(data.reason, 'handler-failed');
        assert.equal(data.attempts, 1);
        assert.match(data.lastError, /PermanentError/);
        await sleep(300);
        assert.deepEqual(deliveries, [1]);
      } finally {
        await consumer.stop();
      }
    });
  });

  test('slow handler keeps its message with in-progress acks', async () => {
    await withWork('slow', { ackWaitSeconds: 1, maxDeliver: 5 }, async (work) => {
      const starts = new Map<string, number[]>();
      const completions = new Map<string, number>();
      const handler = async (message: BusMessage) => {
        const id = message.json<{ id: string }>().id;
        starts.set(id, [...(starts.get(id) ?? []), message.deliveryCount]);
        await sleep(2_500);
        completions.set(id, (completions.get(id) ?? 0) + 1);
      };
      const replicas: RunningConsumer[] = [
        await bus.consume({ stream: work.stream, durable: work.durable, handler }),
        await bus.consume({ stream: work.stream, durable: work.durable, handler }),
      ];
      try {
        const ids: string[] = [];
        for (let n = 0; n < 3; n += 1) {
          const envelope = testEnvelope({ n });
          ids.push(envelope.id);
          await bus.publish(work.subject(n), envelope);
        }
        await waitFor('all handled', () => (completions.size === 3 ? true : undefined), 15_000);
        await sleep(1_200);
        for (const id of ids) {
          assert.deepEqual(starts.get(id), [1], `message ${id} was delivered more than once`);
          assert.equal(completions.get(id), 1);
        }
      } finally {
        await Promise.all(replicas.map((replica) => replica.stop()));
      }
    });
  });

  test('trace context survives a hop', async () => {
    await withWork('trace', {}, async (work) => {
      const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
      const parent = trace.wrapSpanContext({
        traceId,
        spanId: '00f067aa0ba902b7',
        traceFlags: TraceFlags.SAMPLED,
      });
      let seenTraceId: string | undefined;
      let seenHeader: string | undefined;
      const consumer = await bus.consume({
        stream: work.stream,
        durable: work.durable,
        handler: async (message) => {
          seenTraceId = trace.getSpanContext(context.active())?.traceId;
          seenHeader = message.headers?.get('traceparent');
          logger.info('handler ran');
        },
      });
      try {
        await context.with(trace.setSpan(context.active(), parent), () =>
          bus.publish(work.subject('t'), testEnvelope({})),
        );
        await waitFor('handler ran', () => seenTraceId);
        assert.equal(seenTraceId, traceId);
        assert.match(seenHeader ?? '', new RegExp(`^00-${traceId}-00f067aa0ba902b7-01$`));
        const line = lines().find((entry) => entry.msg === 'handler ran');
        assert.equal(line?.traceId, traceId);
      } finally {
        await consumer.stop();
      }
    });
  });

  test('stop naks a message whose handler outlives the bound', async () => {
    await withWork('stop', { ackWaitSeconds: 5, maxDeliver: 5 }, async (work) => {
      let started = false;
      let aborted = false;
      const consumer = await bus.consume({
        stream: work.stream,
        durable: work.durable,
        stopTimeoutMs: 200,
        handler: async (message) => {
          started = true;
          await new Promise<void>((resolve) => {
            message.signal.addEventListener('abort', () => {
              aborted = true;
              resolve();
            });
          });
        },
      });
      await bus.publish(work.subject('s'), testEnvelope({}));
      await waitFor('handler started', () => (started ? true : undefined));
      const stopping = Date.now();
      await consumer.stop();
      assert.ok(Date.now() - stopping < 2_000);
      assert.equal(aborted, true);

      const deliveries: number[] = [];
      const second = await bus.consume({
        stream: work.stream,
        durable: work.durable,
        handler: async (message) => {
          deliveries.push(message.deliveryCount);
        },
      });
      try {
        // Redelivered at once after the nak, long before the 5 s ack wait.
        await waitFor('redelivery', () => (deliveries.length > 0 ? true : undefined), 3_000);
        assert.deepEqual(deliveries, [2]);
      } finally {
        await second.stop();
      }
    });
  });
});
