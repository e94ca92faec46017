import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NATS_USERS, STREAMS, passwordVariable, subjects, topology } from '@keytower/contracts';
import type { DeadLetter } from '@keytower/contracts';
import { PermanentError, connectBus, isPublishError, provision } from '../src/index.ts';
import type { Bus } from '../src/index.ts';
import { startNatsServer } from './support/nats-server.ts';
import type { TestNatsServer } from './support/nats-server.ts';
import { memoryLogger, readDeadLetters, testEnvelope, waitFor } from './support/helpers.ts';

const AUTHORIZATION_CONF = fileURLToPath(
  new URL('../../../deploy/nats/generated/authorization.conf', import.meta.url),
);

describe(
  'permissions',
  { skip: !existsSync(AUTHORIZATION_CONF) && 'generated authorization.conf is missing' },
  () => {
    // The generated permissions need the real stream names, so this suite always starts
    // its own server instead of sharing the test stack.
    let server: TestNatsServer;
    const passwords = new Map<string, string>();
    const { logger } = memoryLogger();
    const buses: Bus[] = [];
    let admin: Bus;

    async function connectAs(user: string): Promise<Bus> {
      const bus = await connectBus({
        servers: server.url,
        user,
        password: passwords.get(user) ?? '',
        name: `permissions-test-${user}`,
        logger,
      });
      buses.push(bus);
      return bus;
    }

    before(async () => {
      const env: Record<string, string> = {};
      for (const user of NATS_USERS) {
        const password = randomBytes(12).toString('hex');
        passwords.set(user, password);
        env[passwordVariable(user)] = password;
      }
      server = await startNatsServer({
        withAdminUser: false,
        files: { 'authorization.conf': readFileSync(AUTHORIZATION_CONF, 'utf8') },
        extraConfig: 'include authorization.conf',
        env,
      });
      admin = await connectAs('admin');
      await provision(admin.connection, topology, { logger });
    });

    after(async () => {
      for (const bus of buses) await bus.close().catch(() => undefined);
      await server.destroy();
    });

    test('connector cannot publish operations', async () => {
      const connector = await connectAs('connector-hsm');
      await assert.rejects(
        connector.publish(subjects.operation('hsm', 'create', 'kt_perm1'), testEnvelope({}), {
          timeoutMs: 2_000,
        }),
        (error: unknown) => {
          assert.ok(isPublishError(error));
          assert.match(error.message, /kms\.op\.v1\.hsm\.create\.kt_perm1/);
          assert.match(error.message, /permission/i);
          return true;
        },
      );
    });

    test('connector cannot create a stream', async () => {
      const connector = await connectAs('connector-hsm');
      await assert.rejects(
        connector.manager.streams.add({ name: 'ROGUE', subjects: ['rogue.>'] }),
        /permission/i,
      );
      await assert.rejects(admin.manager.streams.info('ROGUE'));
    });

    test('connector consumes its durable and publishes outcomes', async () => {
      const connector = await connectAs('connector-hsm');
      const outcome = await connector.publish(
        subjects.keyEvent('created', 'kt_perm2'),
        testEnvelope({ ok: true }),
      );
      assert.equal(outcome.stream, STREAMS.events);

      const handled: string[] = [];
      const good = testEnvelope({ n: 'good' });
      const bad = testEnvelope({ n: 'bad' });
      const consumer = await connector.consume({
        stream: STREAMS.operations,
        durable: 'connector-hsm',
        handler: async (message) => {
          const envelope = message.json<{ id: string }>();
          if (envelope.id === bad.id) {
            throw new PermanentError('unsupported operation');
          }
          handled.push(envelope.id);
        },
      });
      try {
        await admin.publish(subjects.operation('hsm', 'create', 'kt_perm3'), good);
        const badAck = await admin.publish(subjects.operation('hsm', 'create', 'kt_perm4'), bad);
        await waitFor('operation handled', () => (handled.includes(good.id) ? true : undefined));
        const [deadLetter] = await waitFor('dead letter', async () => {
          const found = await readDeadLetters(admin, STREAMS.operations, 'connector-hsm');
          return found.length > 0 ? found : undefined;
        });
        assert.equal((deadLetter?.data as DeadLetter).originalSequence, badAck.seq);
        const info = await admin.manager.consumers.info(STREAMS.operations, 'connector-hsm');
        assert.equal(info.num_ack_pending, 0);
      } finally {
        await consumer.stop();
      }
    });

    test('cli cannot publish events', async () => {
      const cli = await connectAs('cli');
      await assert.rejects(
        cli.publish(subjects.keyEvent('destroyed', 'kt_perm5'), testEnvelope({}), {
          timeoutMs: 2_000,
        }),
        (error: unknown) => isPublishError(error) && /permission/i.test(error.message),
      );
      await assert.rejects(
        cli.manager.streams.add({ name: 'ROGUE_CLI', subjects: ['rogue-cli.>'] }),
        /permission/i,
      );
    });

    test('cli cannot delete a provisioned durable', async () => {
      const cli = await connectAs('cli');

      await assert.rejects(
        cli.manager.consumers.delete(STREAMS.audit, 'sink-kafka'),
        /permission|timeout/i,
      );
      const kept = await admin.manager.consumers.info(STREAMS.audit, 'sink-kafka');
      assert.equal(kept.name, 'sink-kafka');
    });

    test('cli reads the audit stream with an ordered consumer', async () => {
      const cli = await connectAs('cli');
      const consumer = await cli.jetstream.consumers.get(STREAMS.audit);

      // The stream is empty, so the ordered consumer is created and the pull expires with nothing.
      const next = await consumer.next({ expires: 1_000 });

      assert.equal(next, null);
    });

    test('cli publishes commands and reads command status', async () => {
      const cli = await connectAs('cli');
      const ack = await cli.publish(
        subjects.command('rotate', 'kt_perm6'),
        testEnvelope({ keyId: 'kt_perm6' }),
      );
      assert.equal(ack.stream, STREAMS.commands);

      const adminStatus = await admin.kv('kms_commands');
      await adminStatus.put('cmd-perm', JSON.stringify({ status: 'received' }));
      const status = await cli.kv('kms_commands');
      const entry = await status.get('cmd-perm');
      assert.deepEqual(entry?.json(), { status: 'received' });
      await assert.rejects(
        status.put('cmd-perm', JSON.stringify({ status: 'succeeded' })),
        /permission/i,
      );
    });
  },
);
