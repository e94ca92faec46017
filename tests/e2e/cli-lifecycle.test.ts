// The whole key lifecycle through the `keytower` command on the test stack, with the real
// services started by this suite: policy, the HSM connector on the stack's SoftHSM2 token,
// the audit writer and both audit sinks.
//
// Needs the test stack (`npm run stack -- up --profile test`, or `KEYTOWER_STACK_FILE`). The
// suite is skipped, with the reason, while the stack is down or a service has no main.ts.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from '@clickhouse/client';
import type { Bus } from '@keytower/bus';
import { readStackDescriptor, type StackDescriptor } from '@keytower/config';
import { messageTypes, newCommandId, STREAMS, subjects } from '@keytower/contracts';
import {
  connectAs,
  type NatsEnvironment,
  REPO_ROOT,
  readStream,
  runCli,
  type ServiceProcess,
  startPolicy,
  startService,
} from './policy-harness.ts';

const SERVICES = ['policy', 'connector-hsm', 'audit', 'sink-clickhouse', 'sink-kafka'];

function skipReason(): string | undefined {
  const missing = SERVICES.filter(
    (service) => !existsSync(join(REPO_ROOT, 'services', service, 'src', 'main.ts')),
  );
  if (missing.length > 0) {
    return `services without main.ts yet: ${missing.join(', ')}`;
  }
  try {
    readStackDescriptor();
  } catch (error) {
    return `test stack not running: ${error instanceof Error ? error.message : String(error)}`;
  }
  return undefined;
}

const skip = skipReason();

interface SubmitOutput {
  commandId: string;
  keyId: string;
  duplicate: boolean;
  timedOut: boolean;
  status: {
    status: string;
    operationId?: string;
    terminalEvent?: { id: string; type: string; subject: string };
  };
  key: {
    state: string;
    primaryVersion: number;
    destroyAfter: string | null;
    versions: Array<{ version: number; state: string }>;
  } | null;
}

describe('key lifecycle through the CLI', { skip }, () => {
  let stack: StackDescriptor;
  let environment: NatsEnvironment;
  let cliEnv: Record<string, string>;
  let admin: Bus;
  const services: ServiceProcess[] = [];

  before(async () => {
    stack = readStackDescriptor();
    environment = { url: stack.nats.url, users: stack.nats.users, stop: async () => undefined };
    const stackFile =
      process.env.KEYTOWER_STACK_FILE ?? join(REPO_ROOT, '.data', 'test', 'stack.json');
    cliEnv = { KEYTOWER_STACK_FILE: stackFile };
    admin = await connectAs(environment, 'admin');

    const provisioned = await runCli(['admin', 'provision'], cliEnv);
    assert.equal(provisioned.code, 0, provisioned.stderr);

    services.push(await startPolicy(environment, { KEYTOWER_POLICY_ALLOW: 'user:alice=*' }));
    services.push(
      await startService(environment, 'connector-hsm', {
        env: {
          KEYTOWER_PKCS11_MODULE: stack.hsm.module,
          KEYTOWER_PKCS11_TOKEN_LABEL: stack.hsm.tokenLabel,
          KEYTOWER_PKCS11_PIN_FILE: stack.hsm.pinFile,
          SOFTHSM2_CONF: stack.hsm.softhsm2Conf,
        },
        readyPattern: /"msg":"service started"/,
      }),
    );
    services.push(
      await startService(environment, 'audit', { readyPattern: /audit writer started/ }),
    );
    services.push(
      await startService(environment, 'sink-clickhouse', {
        env: {
          KEYTOWER_CLICKHOUSE_URL: stack.clickhouse.url,
          KEYTOWER_CLICKHOUSE_DATABASE: stack.clickhouse.database,
          KEYTOWER_CLICKHOUSE_USER: stack.clickhouse.user,
          KEYTOWER_CLICKHOUSE_PASSWORD: stack.clickhouse.password,
        },
        readyPattern: /"msg":"service started"/,
      }),
    );
    services.push(
      await startService(environment, 'sink-kafka', {
        env: {
          KEYTOWER_KAFKA_BROKERS: stack.kafka.brokers.join(','),
          KEYTOWER_KAFKA_TOPIC: stack.kafka.topic,
        },
        readyPattern: /"msg":"service started"/,
      }),
    );
  });

  after(async () => {
    for (const service of services.reverse()) {
      await service.stop();
    }
    await admin?.close();
  });

  async function keytower(args: string[]): Promise<SubmitOutput> {
    const run = await runCli(['--json', ...args, '--actor', 'user:alice'], cliEnv);
    assert.equal(run.code, 0, `keytower ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
    const output = JSON.parse(run.stdout) as SubmitOutput;
    assert.equal(output.status.status, 'succeeded');
    assert.equal(output.timedOut, false);
    return output;
  }

  test('create, rotate, disable, enable, destroy', async () => {
    const timings: Record<string, number> = {};
    const timed = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
      const started = Date.now();
      const result = await work();
      timings[name] = Date.now() - started;
      return result;
    };

    const created = await timed('create', () =>
      keytower([
        'keys',
        'create',
        '--provider',
        'hsm',
        '--purpose',
        'encrypt',
        '--algorithm',
        'AES_256',
        '--label',
        'lifecycle-e2e',
      ]),
    );
    const keyId = created.keyId;
    assert.match(keyId, /^kt_[0-9a-f]{24}$/);
    assert.equal(created.key?.state, 'enabled');
    assert.equal(created.key?.primaryVersion, 1);
    assert.equal(created.status.terminalEvent?.type, messageTypes.keyEvent('created'));

    const human = await runCli(['keys', 'rotate', keyId, '--actor', 'user:alice'], cliEnv);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, new RegExp(`^rotated key ${keyId}: version 2 is primary`));

    const disabled = await timed('disable', () =>
      keytower(['keys', 'disable', keyId, '--version', '1']),
    );
    assert.deepEqual(
      disabled.key?.versions.map((version) => version.state),
      ['disabled', 'enabled'],
    );
    const enabled = await timed('enable', () =>
      keytower(['keys', 'enable', keyId, '--version', '1']),
    );
    assert.deepEqual(
      enabled.key?.versions.map((version) => version.state),
      ['enabled', 'enabled'],
    );

    const scheduled = await timed('schedule-destroy', () =>
      keytower(['keys', 'schedule-destroy', keyId, '--pending-window', '60']),
    );
    assert.equal(scheduled.key?.state, 'pending-destruction');

    const early = await runCli(['keys', 'destroy', keyId, '--actor', 'user:alice'], cliEnv);
    assert.equal(early.code, 1);
    assert.match(
      early.stderr,
      new RegExp(`^rejected: pending-window-not-passed: key ${keyId} may be destroyed after 20`),
    );

    const cancelled = await timed('cancel-destroy', () =>
      keytower(['keys', 'cancel-destroy', keyId]),
    );
    assert.equal(cancelled.key?.state, 'enabled');
    assert.equal(cancelled.key?.destroyAfter, null);

    const again = await keytower(['keys', 'schedule-destroy', keyId, '--pending-window', '1']);
    const destroyAfter = Date.parse(again.key?.destroyAfter ?? '');
    assert.ok(Number.isFinite(destroyAfter));
    await sleep(Math.max(0, destroyAfter - Date.now() + 100));

    const destroyed = await timed('destroy', () => keytower(['keys', 'destroy', keyId]));
    assert.equal(destroyed.key?.state, 'destroyed');
    assert.deepEqual(
      destroyed.key?.versions.map((version) => version.state),
      ['destroyed', 'destroyed'],
    );
    const terminal = destroyed.status.terminalEvent;
    assert.equal(terminal?.type, messageTypes.keyEvent('destroyed'));

    // The terminal event is in KMS_EVENTS under the key's subject.
    const events = await readStream(admin, STREAMS.events, subjects.keyEvent('destroyed', keyId));
    assert.equal(events.length, 1);
    assert.equal((events[0]?.data as { id: string }).id, terminal?.id);

    // Every step reached the audit trail and the ClickHouse sink.
    const audited = await waitFor(async () => {
      const tail = await runCli(['--json', 'audit', 'tail', '--no-follow', '-n', '1000'], cliEnv);
      const records = tail.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { keyId: string | null; message: { type: string } });
      const types = records
        .filter((record) => record.keyId === keyId)
        .map((record) => record.message.type);
      return types.includes(messageTypes.keyEvent('destroyed')) ? types : undefined;
    });
    assert.ok(audited.includes(messageTypes.command('create')));
    assert.ok(audited.includes(messageTypes.keyEvent('version-created')));
    assert.ok(audited.includes(messageTypes.commandRejected));

    const clickhouse = createClient({
      url: stack.clickhouse.url,
      username: stack.clickhouse.user,
      password: stack.clickhouse.password,
    });
    try {
      const rows = await waitFor(async () => {
        const result = await clickhouse.query({
          query: `SELECT message_type FROM ${stack.clickhouse.database}.audit_records FINAL WHERE key_id = '${keyId}'`,
          format: 'JSONEachRow',
        });
        const found = (await result.json()) as Array<{ message_type: string }>;
        return found.some((row) => row.message_type === messageTypes.keyEvent('destroyed'))
          ? found
          : undefined;
      });
      assert.equal(rows.length, audited.length);
    } finally {
      await clickhouse.close();
    }

    process.stdout.write(`# lifecycle CLI round trips (ms): ${JSON.stringify(timings)}\n`);
  });

  test('reused command id changes nothing', async () => {
    const created = await keytower([
      'keys',
      'create',
      '--provider',
      'hsm',
      '--purpose',
      'sign',
      '--algorithm',
      'EC_P256',
      '--label',
      'lifecycle-reuse',
    ]);
    const keyId = created.keyId;
    const commandId = newCommandId();
    await keytower(['keys', 'rotate', keyId, '--command-id', commandId]);

    const reused = await runCli(
      [
        'keys',
        'disable',
        keyId,
        '--version',
        '1',
        '--command-id',
        commandId,
        '--actor',
        'user:alice',
      ],
      cliEnv,
    );
    assert.equal(reused.code, 2, reused.stderr);
    assert.match(
      reused.stderr,
      new RegExp(
        `^command id ${commandId} is already used by a different command \\(rotate of key ${keyId}\\)`,
      ),
    );

    const shown = await runCli(['--json', 'keys', 'show', keyId], cliEnv);
    assert.equal(shown.code, 0, shown.stderr);
    const entry = JSON.parse(shown.stdout) as { versions: Array<{ state: string }> };
    assert.deepEqual(
      entry.versions.map((version) => version.state),
      ['enabled', 'enabled'],
    );
    const operations = await readStream(admin, STREAMS.operations, `kms.op.v1.*.*.${keyId}`);
    assert.deepEqual(
      operations.map((operation) => operation.subject.split('.')[4]),
      ['create', 'rotate'],
    );
  });
});

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms`);
    }
    await sleep(250);
  }
}
