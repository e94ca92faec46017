import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectBus, provision } from '../src/index.ts';
import type { Bus } from '../src/index.ts';
import { startNatsServer } from './support/nats-server.ts';
import type { TestNatsServer } from './support/nats-server.ts';
import { memoryLogger, testEnvelope, waitFor } from './support/helpers.ts';
import { workTopology } from './support/topology.ts';

describe('server restart', () => {
  // This test restarts the server, so it always runs on a server of its own.
  let server: TestNatsServer & { adminPassword: string };
  let bus: Bus;
  const { logger, lines } = memoryLogger();

  before(async () => {
    server = await startNatsServer();
    bus = await connectBus({
      servers: server.url,
      user: 'admin',
      password: server.adminPassword,
      name: 'restart-test',
      logger,
      reconnectTimeWaitMs: 200,
    });
  });

  after(async () => {
    await bus.close();
    await server.destroy();
  });

  test('consumer resumes without loss after restart', async () => {
    const work = workTopology('restart', { ackWaitSeconds: 2, maxDeliver: 5 });
    await provision(bus.connection, work.topology, { logger });
    const handled = new Map<string, number>();
    const consumer = await bus.consume({
      stream: work.stream,
      durable: work.durable,
      pullExpiresMs: 1_000,
      handler: async (message) => {
        const id = message.json<{ id: string }>().id;
        handled.set(id, (handled.get(id) ?? 0) + 1);
      },
    });
    try {
      const ids: string[] = [];
      for (let n = 0; n < 5; n += 1) {
        const envelope = testEnvelope({ n });
        ids.push(envelope.id);
        await bus.publish(work.subject(n), envelope);
      }
      await waitFor('first batch handled', () =>
        ids.every((id) => handled.has(id)) ? true : undefined,
      );

      await server.stop();
      await waitFor('disconnect noticed', () => (bus.isConnected() ? undefined : true));
      await server.restart();
      await waitFor('reconnected', () => (bus.isConnected() ? true : undefined), 15_000);

      for (let n = 5; n < 10; n += 1) {
        const envelope = testEnvelope({ n });
        ids.push(envelope.id);
        await bus.publish(work.subject(n), envelope);
      }
      await waitFor(
        'second batch handled',
        () => (ids.every((id) => handled.has(id)) ? true : undefined),
        20_000,
      );

      for (const id of ids) {
        assert.equal(handled.get(id), 1, `message ${id} handled ${handled.get(id)} times`);
      }
      const info = await bus.manager.consumers.info(work.stream, work.durable);
      assert.equal(info.num_pending, 0);
      assert.ok(lines().some((line) => line.msg === 'NATS connection lost; reconnecting'));
      assert.ok(lines().some((line) => line.msg === 'NATS connection restored'));
    } finally {
      await consumer.stop();
      await work.cleanup(bus);
    }
  });
});
