import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectBus, isProvisionConflictError, provision } from '../src/index.ts';
import type { Bus } from '../src/index.ts';
import { natsTarget } from './support/nats-server.ts';
import type { NatsTarget } from './support/nats-server.ts';
import { memoryLogger } from './support/helpers.ts';
import { uniquePrefix, workTopology } from './support/topology.ts';
import type { Topology } from '@keytower/contracts';

describe('provision', () => {
  let target: NatsTarget;
  let bus: Bus;
  const { logger, lines } = memoryLogger();

  before(async () => {
    target = await natsTarget();
    bus = await connectBus({
      servers: target.url,
      user: target.user,
      password: target.password,
      name: 'provision-test',
      logger,
    });
  });

  after(async () => {
    await bus.close();
    await target.server?.destroy();
  });

  function topologyWithBucket(): {
    topology: Topology;
    bucket: string;
    cleanup: () => Promise<void>;
  } {
    const work = workTopology('provision', { ackWaitSeconds: 2, maxDeliver: 3 });
    const bucket = `${uniquePrefix('bucket').toLowerCase()}`;
    const sourced = {
      ...work.topology.streams[2]!,
      name: `${work.stream}_IN`,
      description: 'bus test sourced stream',
      subjects: [],
      sources: [work.stream],
    };
    return {
      topology: {
        streams: [...work.topology.streams, sourced],
        consumers: work.topology.consumers,
        buckets: [
          {
            bucket,
            description: 'bus provision test',
            history: 3,
            maxBytes: 1024 * 1024,
            ttlSeconds: 60,
            storage: 'file',
            replicas: 1,
          },
        ],
      },
      bucket,
      async cleanup() {
        await work.cleanup(bus);
        await bus.manager.streams.delete(sourced.name).catch(() => false);
        await bus.manager.streams.delete(`KV_${bucket}`).catch(() => false);
      },
    };
  }

  test('second run changes nothing', async () => {
    const { topology, bucket, cleanup } = topologyWithBucket();
    try {
      const first = await provision(bus.connection, topology, { logger });
      const second = await provision(bus.connection, topology, { logger });

      assert.ok(first.created.includes(`bucket ${bucket}`));
      assert.equal(second.changed, false);
      assert.deepEqual(second.created, []);
      assert.deepEqual(second.updated, []);
      assert.equal(
        second.unchanged.length,
        topology.streams.length + topology.consumers.length + 1,
      );
      assert.ok(
        lines().some((line) => line.msg === 'topology already up to date; nothing changed'),
      );

      const sourced = await bus.manager.streams.info(topology.streams[3]!.name);
      assert.deepEqual(
        sourced.config.sources?.map((source) => source.name),
        [topology.streams[2]!.name],
      );
      const kv = await bus.manager.streams.info(`KV_${bucket}`);
      assert.equal(kv.config.max_msgs_per_subject, 3);
      assert.equal(kv.config.max_age, 60 * 1_000_000_000);
    } finally {
      await cleanup();
    }
  });

  test('updatable settings are updated in place', async () => {
    const { topology, cleanup } = topologyWithBucket();
    try {
      await provision(bus.connection, topology, { logger });
      const work = topology.streams[2]!;
      const worker = topology.consumers[0]!;
      const changed: Topology = {
        ...topology,
        streams: topology.streams.map((spec) =>
          spec.name === work.name ? { ...spec, maxAgeSeconds: 7200 } : spec,
        ),
        consumers: topology.consumers.map((spec) =>
          spec === worker ? { ...spec, ackWaitSeconds: 4, maxDeliver: 4 } : spec,
        ),
      };

      const report = await provision(bus.connection, changed, { logger });

      assert.deepEqual(
        report.updated.sort(),
        [`consumer ${worker.durable} on stream ${work.name}`, `stream ${work.name}`].sort(),
      );
      const info = await bus.manager.consumers.info(work.name, worker.durable);
      assert.equal(info.config.ack_wait, 4 * 1_000_000_000);
      assert.equal(info.config.max_deliver, 4);
      assert.equal((await provision(bus.connection, changed, { logger })).changed, false);
    } finally {
      await cleanup();
    }
  });

  test('storage change is refused naming the setting', async () => {
    const { topology, cleanup } = topologyWithBucket();
    try {
      await provision(bus.connection, topology, { logger });
      const work = topology.streams[2]!;
      const changed: Topology = {
        ...topology,
        streams: topology.streams.map((spec) =>
          spec.name === work.name ? { ...spec, storage: 'memory' } : spec,
        ),
      };

      await assert.rejects(provision(bus.connection, changed, { logger }), (error: unknown) => {
        assert.ok(isProvisionConflictError(error));
        assert.equal(error.setting, 'storage');
        assert.equal(
          error.message,
          `stream ${work.name}: storage cannot be changed in place (current "file", wanted "memory"); ` +
            'create a new one and migrate, or delete it first',
        );
        return true;
      });
      const info = await bus.manager.streams.info(work.name);
      assert.equal(info.config.storage, 'file');
    } finally {
      await cleanup();
    }
  });

  test('deliver policy change is refused', async () => {
    const { topology, cleanup } = topologyWithBucket();
    try {
      await provision(bus.connection, topology, { logger });
      const worker = topology.consumers[0]!;
      const changed: Topology = {
        ...topology,
        consumers: topology.consumers.map((spec) =>
          spec === worker ? { ...spec, deliverPolicy: 'new' } : spec,
        ),
      };
      await assert.rejects(provision(bus.connection, changed, { logger }), (error: unknown) => {
        assert.ok(isProvisionConflictError(error));
        assert.equal(error.resource, `consumer ${worker.durable} on stream ${worker.stream}`);
        assert.equal(error.setting, 'deliverPolicy');
        assert.equal(error.current, 'all');
        assert.equal(error.wanted, 'new');
        return true;
      });
    } finally {
      await cleanup();
    }
  });
});
