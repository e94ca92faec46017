import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startHealthServer } from '../src/index.ts';

async function get(
  port: number,
  path: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('startHealthServer', () => {
  test('healthz answers while the process is up', async () => {
    const server = await startHealthServer({ port: 0, checks: { nats: () => false } });
    try {
      const { status, body } = await get(server.port, '/healthz');
      assert.equal(status, 200);
      assert.equal(body.status, 'ok');
    } finally {
      await server.close();
    }
  });

  test('readyz turns 503 with failing check names', async () => {
    let natsUp = true;
    const server = await startHealthServer({
      port: 0,
      checkTimeoutMs: 200,
      checks: {
        nats: () => natsUp,
        consumer: async () => true,
        slow: () => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 10)),
      },
    });
    try {
      const ready = await get(server.port, '/readyz');
      assert.equal(ready.status, 200);
      assert.equal(ready.body.status, 'ready');

      natsUp = false;
      const notReady = await get(server.port, '/readyz');
      assert.equal(notReady.status, 503);
      assert.deepEqual(notReady.body.failing, ['nats']);
    } finally {
      await server.close();
    }
  });

  test('throwing or hanging checks fail', async () => {
    const server = await startHealthServer({
      port: 0,
      checkTimeoutMs: 100,
      checks: {
        broken: () => {
          throw new Error('boom');
        },
        hanging: () => new Promise<boolean>(() => undefined),
        fine: () => true,
      },
    });
    try {
      const { status, body } = await get(server.port, '/readyz');
      assert.equal(status, 503);
      assert.deepEqual(body.failing, ['broken', 'hanging']);
      assert.equal((await get(server.port, '/other')).status, 404);
    } finally {
      await server.close();
    }
  });

  test('non-loopback host is rejected', async () => {
    await assert.rejects(startHealthServer({ port: 0, host: '0.0.0.0' }), /not a loopback address/);
  });
});
