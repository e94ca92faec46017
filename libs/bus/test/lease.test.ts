import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  acquireLease,
  connectBus,
  isLeaseHeldError,
  isLeaseLostError,
  provision,
} from '../src/index.ts';
import type { Bus, Lease } from '../src/index.ts';
import { natsTarget } from './support/nats-server.ts';
import type { NatsTarget } from './support/nats-server.ts';
import { memoryLogger, sleep, waitFor } from './support/helpers.ts';
import { uniquePrefix } from './support/topology.ts';

interface LeaseLine {
  event: 'acquired' | 'state';
  at: number;
  held?: boolean;
  lost?: boolean;
  fencingToken?: number;
}

describe('acquireLease', () => {
  let target: NatsTarget;
  let bus: Bus;
  const bucket = `${uniquePrefix('lease').toLowerCase()}_leases`;
  const { logger } = memoryLogger();

  before(async () => {
    target = await natsTarget();
    bus = await connectBus({
      servers: target.url,
      user: target.user,
      password: target.password,
      name: 'lease-test',
      logger,
    });
    await provision(
      bus.connection,
      {
        streams: [],
        consumers: [],
        buckets: [
          {
            bucket,
            description: 'bus lease tests',
            history: 1,
            maxBytes: 1024 * 1024,
            ttlSeconds: 0,
            storage: 'file',
            replicas: 1,
          },
        ],
      },
      { logger },
    );
  });

  after(async () => {
    await bus.manager.streams.delete(`KV_${bucket}`).catch(() => false);
    await bus.close();
    await target.server?.destroy();
  });

  test('racing contenders get one lease', async () => {
    const results = await Promise.allSettled(
      ['a', 'b', 'c'].map((holder) =>
        acquireLease(bus, { bucket, name: 'race', holder, ttlSeconds: 5 }),
      ),
    );
    const granted = results.filter(
      (result): result is PromiseFulfilledResult<Lease> => result.status === 'fulfilled',
    );
    const refused = results.filter((result) => result.status === 'rejected');
    try {
      assert.equal(granted.length, 1);
      assert.equal(refused.length, 2);
      for (const result of refused) {
        assert.ok(isLeaseHeldError((result as PromiseRejectedResult).reason));
      }
    } finally {
      await Promise.all(granted.map((result) => result.value.release()));
    }
  });

  test('live lease is refused and released lease is granted', async () => {
    const first = await acquireLease(bus, {
      bucket,
      name: 'handover',
      holder: 'first',
      ttlSeconds: 5,
    });
    await assert.rejects(
      acquireLease(bus, { bucket, name: 'handover', holder: 'second', ttlSeconds: 5 }),
      (error: unknown) => {
        assert.ok(isLeaseHeldError(error));
        assert.equal(error.holder, 'first');
        assert.match(error.message, /lease handover is held by first until /);
        return true;
      },
    );
    await first.release();
    assert.equal(first.held, false);

    const second = await acquireLease(bus, {
      bucket,
      name: 'handover',
      holder: 'second',
      ttlSeconds: 5,
    });
    try {
      assert.ok(second.held);
      assert.ok(second.fencingToken > first.fencingToken);
    } finally {
      await second.release();
    }
  });

  test('renewal keeps the lease past its ttl', async () => {
    const lease = await acquireLease(bus, {
      bucket,
      name: 'renewed',
      holder: 'keeper',
      ttlSeconds: 1,
    });
    try {
      await sleep(2_500);
      assert.equal(lease.held, true);
      assert.equal(lease.lost.aborted, false);
      await assert.rejects(
        acquireLease(bus, { bucket, name: 'renewed', holder: 'other', ttlSeconds: 1 }),
        isLeaseHeldError,
      );
    } finally {
      await lease.release();
    }
  });

  test('overwritten entry signals lost', async () => {
    const lease = await acquireLease(bus, {
      bucket,
      name: 'overwritten',
      holder: 'victim',
      ttlSeconds: 1,
    });
    try {
      const kv = await bus.kv(bucket);
      await kv.put(
        'overwritten',
        JSON.stringify({
          holder: 'intruder',
          expiresAt: new Date(Date.now() + 60_000).toISOString(),
          acquiredAt: new Date().toISOString(),
        }),
      );

      await waitFor('lost signal', () => (lease.lost.aborted ? true : undefined), 3_000);
      assert.equal(lease.held, false);
      assert.ok(isLeaseLostError(lease.lost.reason));
      assert.match(String(lease.lost.reason.message), /the entry now shows holder intruder/);
      await assert.rejects(lease.renew(), isLeaseLostError);
    } finally {
      await lease.release();
    }
  });

  test('paused holder never overlaps its successor', async () => {
    const script = fileURLToPath(new URL('./support/lease-child.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      [
        script,
        JSON.stringify({
          url: target.url,
          user: target.user,
          password: target.password,
          bucket,
          name: 'paused',
          holder: 'sleeper',
          ttlSeconds: 2,
        }),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines: LeaseLine[] = [];
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop() ?? '';
      for (const part of parts) if (part !== '') lines.push(JSON.parse(part) as LeaseLine);
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let successor: Lease | undefined;
    try {
      const acquired = await waitFor('child lease', () =>
        lines.find((line) => line.event === 'acquired'),
      );
      await sleep(300);
      child.kill('SIGSTOP');
      const pausedAt = Date.now();

      // While the holder is paused and its lease unexpired, a contender is refused.
      await assert.rejects(
        acquireLease(bus, { bucket, name: 'paused', holder: 'successor', ttlSeconds: 2 }),
        isLeaseHeldError,
      );
      await sleep(2_300);
      successor = await acquireLease(bus, {
        bucket,
        name: 'paused',
        holder: 'successor',
        ttlSeconds: 2,
      });
      const grantedAt = Date.now();
      assert.ok(successor.fencingToken > (acquired.fencingToken ?? Infinity));

      child.kill('SIGCONT');
      await waitFor(
        'child reports lost',
        () => lines.find((line) => line.at > grantedAt && line.lost === true),
        5_000,
      );
      const afterGrant = lines.filter((line) => line.event === 'state' && line.at >= grantedAt);
      assert.ok(afterGrant.length > 0);
      for (const line of afterGrant) {
        assert.equal(line.held, false, `paused holder believed it held the lease at ${line.at}`);
      }
      assert.ok(
        lines.some((line) => line.event === 'state' && line.held === true && line.at < pausedAt),
      );
      assert.equal(successor.held, true);
    } finally {
      child.kill('SIGKILL');
      await exited;
      await successor?.release();
    }
  });
});
