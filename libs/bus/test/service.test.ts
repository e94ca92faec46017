import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connectBus, provision, runService } from '../src/index.ts';
import type { Bus } from '../src/index.ts';
import { commonSettingsSchema, isConfigError } from '@keytower/config';
import { freePort, natsTarget } from './support/nats-server.ts';
import type { NatsTarget } from './support/nats-server.ts';
import { memoryLogger, testEnvelope, waitFor } from './support/helpers.ts';
import { workTopology } from './support/topology.ts';

const SERVICE_SCRIPT = fileURLToPath(new URL('./support/service-child.ts', import.meta.url));

describe('runService', () => {
  let target: NatsTarget;
  let bus: Bus;
  const { logger } = memoryLogger();

  before(async () => {
    target = await natsTarget();
    bus = await connectBus({
      servers: target.url,
      user: target.user,
      password: target.password,
      name: 'service-test',
      logger,
    });
  });

  after(async () => {
    await bus.close();
    await target.server?.destroy();
  });

  test('invalid settings fail before connecting', async () => {
    await assert.rejects(
      runService({
        name: 'broken',
        configSchema: commonSettingsSchema,
        env: {
          KEYTOWER_NATS_URL: 'http://wrong',
          KEYTOWER_NATS_USER: 'x',
          KEYTOWER_NATS_PASSWORD: 'y',
        },
        handleSignals: false,
        start: async () => {
          throw new Error('start must not run');
        },
      }),
      (error: unknown) =>
        isConfigError(error) &&
        /KEYTOWER_NATS_URL: expected nats:\/\/ URL, received "http:\/\/wrong"/.test(error.message),
    );
  });

  test('SIGTERM finishes in-flight work and exits 0', async () => {
    const work = workTopology('service', { ackWaitSeconds: 5, maxDeliver: 3 });
    await provision(bus.connection, work.topology, { logger });
    const healthPort = await freePort();
    const child = spawn(process.execPath, [SERVICE_SCRIPT], {
      env: {
        PATH: process.env.PATH,
        KEYTOWER_NATS_URL: target.url,
        KEYTOWER_NATS_USER: target.user,
        KEYTOWER_NATS_PASSWORD: target.password,
        KEYTOWER_HEALTH_PORT: String(healthPort),
        KEYTOWER_TEST_STREAM: work.stream,
        KEYTOWER_TEST_DURABLE: work.durable,
        KEYTOWER_TEST_HANDLER_MS: '1500',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exitCode = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    const logLines = () =>
      output
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);

    try {
      await waitFor('service started', () =>
        logLines().some((line) => line.msg === 'service started') ? true : undefined,
      );
      const ready = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
      assert.equal(ready.status, 200);

      const envelope = testEnvelope({ n: 1 });
      await bus.publish(work.subject(1), envelope);
      await waitFor('handler started', () =>
        logLines().some((line) => line.msg === 'handler started') ? true : undefined,
      );
      child.kill('SIGTERM');

      assert.equal(await exitCode, 0, output);
      const messages = logLines().map((line) => line.msg);
      assert.ok(messages.indexOf('handler finished') < messages.indexOf('service stopped'), output);
      assert.ok(messages.includes('signal received'));
      assert.ok(logLines().every((line) => line.service === 'bus-test-service'));
      assert.doesNotMatch(output, new RegExp(target.password || 'no-password-to-check'));

      const info = await bus.manager.consumers.info(work.stream, work.durable);
      assert.equal(info.num_ack_pending, 0);
      assert.equal(info.num_pending, 0);
      assert.equal(info.delivered.consumer_seq, 1);
    } finally {
      child.kill('SIGKILL');
      await work.cleanup(bus);
    }
  });
});
