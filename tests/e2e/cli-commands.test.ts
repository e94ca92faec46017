// The `keytower` command against real NATS and the policy service: exit codes, one-line
// reasons, `--json`, duplicate publishes, reads and provisioning.
//
// Keys use the `aws` provider, served here by a stand-in connector on the `connector-aws`
// durable that replies to every operation with the outcome event a connector publishes (or
// with `operation.failed` for labels starting with `fail`, and fails permanently, so the
// bus dead-letters the operation, for labels starting with `crash`). Connecting as
// `connector-aws` registers the `aws` capability descriptor, without which policy rejects the
// create. The full path through the HSM connector is covered by cli-lifecycle.test.ts.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Bus, PermanentError, type RunningConsumer } from '@keytower/bus';
import {
  BUCKETS,
  buildEnvelope,
  deriveEventId,
  deriveKeyId,
  DURABLES,
  type KeyEventName,
  messageTypes,
  newCommandId,
  type OperationData,
  STREAMS,
  subjects,
} from '@keytower/contracts';
import {
  connectAs,
  type NatsEnvironment,
  natsEnvironment,
  natsVariables,
  readStream,
  REPO_ROOT,
  runCli,
  type ServiceProcess,
  startPolicy,
  startService,
} from './policy-harness.ts';

let environment: NatsEnvironment;
let policy: ServiceProcess;
let audit: ServiceProcess;
let admin: Bus;
let connector: Bus;
let standIn: RunningConsumer;
let cliEnv: Record<string, string>;

/** Replies to one operation as a connector would: the success event, or `operation.failed`. */
async function reply(operation: OperationData, time: string): Promise<void> {
  const base = {
    keyId: operation.keyId,
    commandId: operation.commandId,
    operationId: operation.operationId,
    provider: operation.provider,
    sequence: operation.sequence,
    native: { standIn: true },
  };
  if (operation.key.label.startsWith('crash')) {
    throw new PermanentError('stand-in connector crashed');
  }
  if (operation.key.label.startsWith('fail')) {
    const type = messageTypes.operationFailed;
    await connector.publish(
      subjects.operationFailed(operation.keyId),
      buildEnvelope({
        id: deriveEventId(operation.operationId, type),
        type,
        subject: operation.keyId,
        data: {
          keyId: base.keyId,
          commandId: base.commandId,
          operationId: base.operationId,
          provider: base.provider,
          sequence: base.sequence,
          action: operation.action,
          error: {
            code: 'provider-rejected',
            message: 'stand-in provider rejected the key',
            retryable: false,
          },
        },
        actor: 'service:connector-aws',
        source: 'keytower/e2e-connector',
      }),
    );
    return;
  }

  const outcomes: Record<string, [KeyEventName, Record<string, unknown>]> = {
    create: [
      'created',
      {
        ...operation.key,
        version: operation.version,
        nativeVersionId: `stand-in-${operation.version}`,
        primaryVersion: operation.version,
      },
    ],
    rotate: [
      'version-created',
      {
        version: operation.version,
        nativeVersionId: `stand-in-${operation.version}`,
        primaryVersion: operation.version,
      },
    ],
    disable: ['disabled', { version: operation.version }],
    enable: ['enabled', { version: operation.version }],
    'schedule-destroy': ['destroy-scheduled', { destroyAfter: operation.destroyAfter ?? time }],
    'cancel-destroy': ['destroy-cancelled', {}],
    destroy: ['destroyed', { versions: operation.versions.map((version) => version.version) }],
  };
  const outcome = outcomes[operation.action];
  if (outcome === undefined) {
    return;
  }
  const [event, extra] = outcome;
  const type = messageTypes.keyEvent(event);
  await connector.publish(
    subjects.keyEvent(event, operation.keyId),
    buildEnvelope({
      id: deriveEventId(operation.operationId, type),
      type,
      subject: operation.keyId,
      data: { ...base, ...extra },
      actor: 'service:connector-aws',
      source: 'keytower/e2e-connector',
    }),
  );
}

before(async () => {
  environment = await natsEnvironment();
  policy = await startPolicy(environment);
  audit = await startService(environment, 'audit', { readyPattern: /audit writer started/ });
  admin = await connectAs(environment, 'admin');
  connector = await connectAs(environment, 'connector-aws');
  standIn = await connector.consume({
    stream: STREAMS.operations,
    durable: DURABLES.connector('aws'),
    handler: async (message) => {
      const envelope = message.json<{ data: OperationData; time: string }>();
      await reply(envelope.data, envelope.time);
    },
  });
  cliEnv = natsVariables(environment, 'cli');
});

after(async () => {
  await standIn?.stop();
  await policy?.stop();
  await audit?.stop();
  await Promise.all([admin?.close(), connector?.close()]);
  await environment?.stop();
});

async function commandCount(): Promise<number> {
  const info = await admin.manager.streams.info(STREAMS.commands);
  return info.state.messages;
}

function createArgs(label: string, extra: string[] = []): string[] {
  return [
    'keys',
    'create',
    '--provider',
    'aws',
    '--purpose',
    'encrypt',
    '--algorithm',
    'AES_256',
    '--label',
    label,
    ...extra,
  ];
}

/** Creates an `aws` key through the CLI and returns its id. */
async function createKey(label: string): Promise<string> {
  const run = await runCli(['--json', ...createArgs(label)], cliEnv);
  assert.equal(run.code, 0, run.stderr);
  return (JSON.parse(run.stdout) as { keyId: string }).keyId;
}

/** Reads a key's inventory entry through `keys show --json`. */
async function showKey(
  keyId: string,
): Promise<{ primaryVersion: number; versions: Array<{ state: string }> }> {
  const run = await runCli(['--json', 'keys', 'show', keyId], cliEnv);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as { primaryVersion: number; versions: Array<{ state: string }> };
}

describe('keytower CLI', () => {
  test('admin provision is idempotent', async () => {
    const adminEnv = natsVariables(environment, 'admin');
    const first = await runCli(['admin', 'provision'], adminEnv);
    assert.equal(first.code, 0, first.stderr);
    const second = await runCli(['--json', 'admin', 'provision'], adminEnv);
    assert.equal(second.code, 0, second.stderr);
    const report = JSON.parse(second.stdout) as { changed: boolean; created: string[] };
    assert.equal(report.changed, false);
    assert.deepEqual(report.created, []);
  });

  test('invalid input exits 2 and publishes nothing', async () => {
    const before = await commandCount();
    const cases: Array<[string[], RegExp]> = [
      [
        ['keys', 'create', '--purpose', 'encrypt', '--algorithm', 'DES', '--label', 'x'],
        /invalid --algorithm "DES": expected one of AES_256, EC_P256, RSA_3072/,
      ],
      [
        ['keys', 'create', '--purpose', 'sign', '--algorithm', 'AES_256', '--label', 'x'],
        /for --purpose sign: expected one of EC_P256, RSA_3072/,
      ],
      [
        [
          'keys',
          'create',
          '--provider',
          'azure-ish',
          '--purpose',
          'encrypt',
          '--algorithm',
          'AES_256',
          '--label',
          'x',
        ],
        /invalid --provider "azure-ish": expected one of hsm, aws, azure, gcp, oci/,
      ],
      [['keys', 'disable', 'kt_0123456789abcdef01234567'], /missing --version <number>/],
      [
        ['keys', 'enable', 'kt_0123456789abcdef01234567', '--version', 'two'],
        /invalid --version "two"/,
      ],
      [['keys', 'rotate', 'kt.bad.id'], /invalid key id "kt.bad.id"/],
      [
        ['keys', 'rotate', 'kt_0123456789abcdef01234567', '--actor', 'alice'],
        /invalid --actor "alice"/,
      ],
      [
        ['keys', 'schedule-destroy', 'kt_0123456789abcdef01234567', '--pending-window', '0'],
        /invalid --pending-window "0"/,
      ],
      [
        ['keys', 'create', '--purpose', 'encrypt', '--algorithm', 'AES_256'],
        /required option '--label <text>' not specified/,
      ],
      [['keys', 'frobnicate'], /unknown command 'frobnicate'/],
      [
        ['keys', 'rotate', 'kt_0123456789abcdef01234567', '--command-id', 'my-rotation-1'],
        /invalid --command-id "my-rotation-1": expected a ULID/,
      ],
      [
        ['keys', 'rotate', 'kt_0123456789abcdef01234567', '--retry-of', 'previous'],
        /invalid --retry-of "previous": expected a ULID/,
      ],
      [
        createArgs('cli-tags', ['--tag', 'env=prod', '--tag', 'env=dev']),
        /duplicate --tag "env": give each tag name once \(received env=prod and env=dev\)/,
      ],
      [
        ['keys', 'schedule-destroy', 'kt_0123456789abcdef01234567', '--pending-window', '2592001'],
        /invalid --pending-window 2592001: expected at most 2592000 seconds \(30 days\)/,
      ],
      [['help', 'keys', 'frobnicate'], /unknown command 'frobnicate': `keytower keys --help`/],
    ];
    for (const [args, message] of cases) {
      const run = await runCli(args, cliEnv);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message, args.join(' '));
    }
    assert.equal(await commandCount(), before);
  });

  test('create prints key id and version', async () => {
    const run = await runCli(createArgs('cli-create'), cliEnv);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      /^created key kt_[0-9a-f]{24} version 1 \(command [0-9A-Z]{26}, operation op_[0-9a-f]{24}\)\n$/,
    );
  });

  test('--json lifecycle with exit codes', async () => {
    const created = await runCli(
      ['--json', ...createArgs('cli-json', ['--tag', 'team=payments'])],
      cliEnv,
    );
    assert.equal(created.code, 0, created.stderr);
    const result = JSON.parse(created.stdout) as {
      commandId: string;
      keyId: string;
      duplicate: boolean;
      timedOut: boolean;
      status: { status: string; terminalEvent: { type: string } };
      key: { primaryVersion: number; tags: Record<string, string> };
    };
    assert.equal(result.keyId, deriveKeyId(result.commandId));
    assert.equal(result.duplicate, false);
    assert.equal(result.timedOut, false);
    assert.equal(result.status.status, 'succeeded');
    assert.equal(result.status.terminalEvent.type, messageTypes.keyEvent('created'));
    assert.equal(result.key.primaryVersion, 1);
    assert.deepEqual(result.key.tags, { team: 'payments' });
    const keyId = result.keyId;

    const rotated = await runCli(['keys', 'rotate', keyId], cliEnv);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.match(rotated.stdout, new RegExp(`rotated key ${keyId}: version 2 is primary`));

    const missing = await runCli(['keys', 'disable', keyId, '--version', '9'], cliEnv);
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, '');
    assert.match(
      missing.stderr,
      /^rejected: version-not-found: key kt_[0-9a-f]+ has no version 9 \(versions: 1, 2\)\n$/,
    );

    const disabled = await runCli(['--json', 'keys', 'disable', keyId, '--version', '1'], cliEnv);
    assert.equal(disabled.code, 0, disabled.stderr);
    assert.equal(JSON.parse(disabled.stdout).status.status, 'succeeded');

    const tooShort = await runCli(
      ['keys', 'schedule-destroy', keyId, '--pending-window', '1'],
      cliEnv,
    );
    assert.equal(tooShort.code, 0, `${tooShort.stderr} (policy runs with the test profile)`);
    assert.match(tooShort.stdout, /pending destruction until 20/);

    const early = await runCli(['keys', 'rotate', keyId], cliEnv);
    assert.equal(early.code, 1);
    assert.match(early.stderr, /^rejected: invalid-state: .*pending destruction/);

    const shownJson = await runCli(['--json', 'keys', 'show', keyId], cliEnv);
    assert.equal(shownJson.code, 0, shownJson.stderr);
    const entry = JSON.parse(shownJson.stdout) as {
      state: string;
      versions: Array<{ state: string }>;
    };
    assert.equal(entry.state, 'pending-destruction');
    assert.deepEqual(
      entry.versions.map((version) => version.state),
      ['disabled', 'enabled'],
    );

    const human = await runCli(['keys', 'show', keyId], cliEnv);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /state\s+pending-destruction/);

    const listed = await runCli(['keys', 'list'], cliEnv);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(
      listed.stdout,
      new RegExp(`${keyId}\\s+aws\\s+AES_256\\s+pending-destruction\\s+2\\s+2`),
    );

    const status = await runCli(['commands', 'show', result.commandId], cliEnv);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /status\s+succeeded/);
    assert.match(status.stdout, /event\s+keytower\.event\.key\.created\.v1/);
  });

  test('same --command-id twice reports duplicate', async () => {
    const commandId = newCommandId();
    const first = await runCli(createArgs('cli-dup', ['--command-id', commandId]), cliEnv);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stderr, '');

    const second = await runCli(createArgs('cli-dup', ['--command-id', commandId]), cliEnv);
    assert.equal(second.code, 0, second.stderr);
    assert.match(
      second.stderr,
      new RegExp(`^duplicate: command ${commandId} was already published`),
    );
    assert.match(second.stdout, new RegExp(`created key ${deriveKeyId(commandId)} version 1`));

    const json = await runCli(
      ['--json', ...createArgs('cli-dup', ['--command-id', commandId])],
      cliEnv,
    );
    assert.equal(json.code, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).duplicate, true);

    const retry = await runCli(
      ['--json', ...createArgs('cli-dup', ['--retry-of', commandId])],
      cliEnv,
    );
    assert.equal(retry.code, 0, retry.stderr);
    const retried = JSON.parse(retry.stdout) as {
      commandId: string;
      keyId: string;
      duplicate: boolean;
    };
    assert.notEqual(retried.commandId, commandId);
    assert.equal(retried.duplicate, false);
    const published = await readStream(
      admin,
      STREAMS.commands,
      subjects.command('create', retried.keyId),
    );
    assert.equal((published[0]?.data as { causationid?: string }).causationid, commandId);

    const both = await runCli(
      createArgs('cli-dup', ['--command-id', commandId, '--retry-of', commandId]),
      cliEnv,
    );
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--command-id and --retry-of exclude each other/);
  });

  test('reused --command-id for another command exits 2', async () => {
    const first = await createKey('cli-reuse-1');
    const second = await createKey('cli-reuse-2');
    const commandId = newCommandId();
    const rotated = await runCli(['keys', 'rotate', first, '--command-id', commandId], cliEnv);
    assert.equal(rotated.code, 0, rotated.stderr);
    const published = await commandCount();

    const cases: Array<[string, string[]]> = [
      ['another action', ['keys', 'disable', first, '--version', '1', '--command-id', commandId]],
      ['another key', ['keys', 'rotate', second, '--command-id', commandId]],
      [
        'another actor',
        ['keys', 'rotate', first, '--command-id', commandId, '--actor', 'user:bob'],
      ],
    ];
    for (const [name, args] of cases) {
      const run = await runCli(args, cliEnv);
      assert.equal(run.code, 2, `${name}: ${run.stderr}`);
      assert.equal(run.stdout, '', name);
      assert.match(
        run.stderr,
        new RegExp(
          `^command id ${commandId} is already used by a different command \\(rotate of key ${first}[^)]*\\): use a new --command-id, or --retry-of ${commandId} to send a new command that refers to it\n$`,
        ),
        name,
      );
    }
    assert.equal(await commandCount(), published);

    const firstKey = await showKey(first);
    assert.equal(firstKey.primaryVersion, 2);
    assert.deepEqual(
      firstKey.versions.map((version) => version.state),
      ['enabled', 'enabled'],
    );
    const secondKey = await showKey(second);
    assert.equal(secondKey.primaryVersion, 1);
    assert.equal(secondKey.versions.length, 1);

    const same = await runCli(['keys', 'rotate', first, '--command-id', commandId], cliEnv);
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stderr, new RegExp(`^duplicate: command ${commandId} was already published`));
    assert.match(same.stdout, new RegExp(`^rotated key ${first}: version 2 is primary`));
  });

  test('reused --command-id with other data exits 2', async () => {
    const keyId = await createKey('cli-reuse-data');
    const rotated = await runCli(['keys', 'rotate', keyId], cliEnv);
    assert.equal(rotated.code, 0, rotated.stderr);
    const commandId = newCommandId();
    const disabled = await runCli(
      ['keys', 'disable', keyId, '--version', '1', '--command-id', commandId],
      cliEnv,
    );
    assert.equal(disabled.code, 0, disabled.stderr);

    // Same action and key, so only the stored message shows that the version differs.
    const other = await runCli(
      ['keys', 'disable', keyId, '--version', '2', '--command-id', commandId],
      cliEnv,
    );
    assert.equal(other.code, 2, other.stderr);
    assert.match(
      other.stderr,
      new RegExp(
        `^command id ${commandId} is already used by a different command \\(disable of key ${keyId}; its data differs\\)`,
      ),
    );
    const entry = await showKey(keyId);
    assert.deepEqual(
      entry.versions.map((version) => version.state),
      ['disabled', 'enabled'],
    );
  });

  test('concurrent rotates fold into one', async () => {
    const keyId = await createKey('cli-fold');
    const runs = await Promise.all(
      [1, 2, 3].map(async () => await runCli(['keys', 'rotate', keyId], cliEnv)),
    );
    for (const run of runs) {
      assert.equal(run.code, 0, run.stderr);
    }
    const rotated = runs.filter((run) => run.stdout.startsWith('rotated key'));
    const folded = runs.filter((run) => run.stdout.startsWith('rotation of key'));
    assert.ok(rotated.length >= 1, runs.map((run) => run.stdout).join(''));
    assert.equal(rotated.length + folded.length, runs.length);
    for (const run of folded) {
      assert.match(
        run.stdout,
        new RegExp(
          `^rotation of key ${keyId} folded into the rotation by operation op_[0-9a-f]{24}: version [2-4] is primary \\(command [0-9A-Z]{26}\\)\n$`,
        ),
      );
    }
    const entry = await showKey(keyId);
    assert.equal(entry.versions.length, 1 + rotated.length);
  });

  test('failed operation exits 3', async () => {
    const run = await runCli(createArgs('fail-on-purpose'), cliEnv);
    assert.equal(run.code, 3);
    assert.match(run.stderr, /^failed: provider-rejected: stand-in provider rejected the key\n$/);

    // A key whose creation failed leaves no inventory entry behind.
    const json = await runCli(['--json', ...createArgs('fail-again')], cliEnv);
    assert.equal(json.code, 3);
    const result = JSON.parse(json.stdout) as {
      keyId: string;
      status: { status: string; terminalEvent: { type: string } };
    };
    assert.equal(result.status.status, 'failed');
    assert.equal(result.status.terminalEvent.type, messageTypes.operationFailed);
    const shown = await runCli(['keys', 'show', result.keyId], cliEnv);
    assert.equal(shown.code, 1);
    assert.match(shown.stderr, /not found/);
  });

  test('dead-lettered operation exits 3', async () => {
    const run = await runCli(createArgs('crash-on-purpose'), cliEnv);
    assert.equal(run.code, 3);
    assert.match(
      run.stderr,
      /^dead-lettered: connector-aws gave up on kms\.op\.v1\.aws\.create\.kt_[0-9a-f]+ after 1 attempts \(handler-failed\): PermanentError: stand-in connector crashed\n$/,
    );
  });

  test('no outcome exits 4 after --timeout', async () => {
    // Connecting as connector-gcp registers the gcp capabilities, but nothing takes the
    // operation, so the command stays in progress.
    const silent = await connectAs(environment, 'connector-gcp');
    try {
      const started = Date.now();
      const run = await runCli(
        [
          'keys',
          'create',
          '--provider',
          'gcp',
          '--purpose',
          'encrypt',
          '--algorithm',
          'AES_256',
          '--label',
          'nobody-answers',
          '--timeout',
          '1',
        ],
        cliEnv,
      );
      assert.equal(run.code, 4, run.stderr);
      assert.match(
        run.stderr,
        /^timed out: command [0-9A-Z]+ \(create kt_[0-9a-f]+\) has last status in-progress; check later with `keytower commands show/,
      );
      assert.ok(Date.now() - started < 15_000);
    } finally {
      await (await silent.kv(BUCKETS.capabilities)).delete('gcp');
      await silent.close();
    }
  });

  test('unknown actor is rejected', async () => {
    const run = await runCli(createArgs('cli-mallory', ['--actor', 'user:mallory']), cliEnv);
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /^rejected: not-authorized: actor user:mallory is not in the policy allow-list\n$/,
    );
  });

  test('reads of unknown ids exit 1', async () => {
    const key = await runCli(['keys', 'show', 'kt_ffffffffffffffffffffffff'], cliEnv);
    assert.equal(key.code, 1);
    assert.match(key.stderr, /key kt_ffffffffffffffffffffffff not found/);
    const command = await runCli(['commands', 'show', newCommandId()], cliEnv);
    assert.equal(command.code, 1);
    assert.match(command.stderr, /command [0-9A-Z]+ not found/);
  });

  test('unreachable NATS exits 5', async () => {
    const run = await runCli(['keys', 'list'], {
      ...cliEnv,
      KEYTOWER_NATS_URL: 'nats://127.0.0.1:1',
    });
    assert.equal(run.code, 5);
    assert.match(run.stderr, /could not connect to NATS at nats:\/\/127\.0\.0\.1:1 as cli/);
  });

  test('audit tail prints the latest records', async () => {
    const created = await runCli(['--json', ...createArgs('cli-audit')], cliEnv);
    assert.equal(created.code, 0, created.stderr);
    const { commandId, keyId } = JSON.parse(created.stdout) as { commandId: string; keyId: string };

    // The audit writer appends asynchronously: wait until the created event is in the trail.
    let lines: string[] = [];
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const tail = await runCli(['audit', 'tail', '--no-follow', '-n', '3'], cliEnv);
      assert.equal(tail.code, 0, tail.stderr);
      lines = tail.stdout.trim().split('\n');
      if (
        lines.some((line) => line.includes('keytower.event.key.created.v1') && line.includes(keyId))
      ) {
        break;
      }
      await new Promise((resolveWait) => setTimeout(resolveWait, 250));
    }
    // The last three records are the command, the operation and the created event.
    assert.equal(lines.length, 3);
    const createdLine = lines[2] ?? '';
    assert.match(
      createdLine,
      new RegExp(
        `^\\s*[0-9]+  20[0-9-]+T[0-9:.]+Z  keytower\\.event\\.key\\.created\\.v1  ${keyId}  service:connector-aws  [0-9a-f]{16}$`,
      ),
    );
    assert.match(
      lines[0] ?? '',
      new RegExp(`keytower\\.command\\.key\\.create\\.v1  ${keyId}  user:alice`),
    );
    assert.match(
      lines[1] ?? '',
      new RegExp(`keytower\\.operation\\.key\\.create\\.v1  ${keyId}  user:alice`),
    );

    const fromStart = await runCli(
      ['--json', 'audit', 'tail', '--from-start', '--no-follow'],
      cliEnv,
    );
    assert.equal(fromStart.code, 0, fromStart.stderr);
    const records = fromStart.stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { sequence: number; message: { id: string } });
    assert.equal(records[0]?.sequence, 1);
    assert.deepEqual(
      records.map((record) => record.sequence),
      records.map((_, index) => index + 1),
    );
    assert.ok(records.some((record) => record.message.id === commandId));
  });

  test('launcher runs under an older node', () => {
    const launcher = join(REPO_ROOT, 'services', 'cli', 'bin', 'keytower.js');
    const result = spawnSync('/usr/bin/node', [launcher, '--help'], { encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /Usage: keytower/);
  });

  test('help names nested commands', async () => {
    const nested = await runCli(['help', 'keys', 'create'], {});
    assert.equal(nested.code, 0, nested.stderr);
    assert.match(nested.stdout, /^Usage: keytower keys create \[options\]/);
    assert.match(nested.stdout, /--purpose <purpose>/);
    const afterGlobals = await runCli(['--stack', 'dev', 'help', 'keys', 'create'], {});
    assert.equal(afterGlobals.code, 0, afterGlobals.stderr);
    assert.match(afterGlobals.stdout, /^Usage: keytower keys create \[options\]/);
    const group = await runCli(['help', 'keys'], {});
    assert.equal(group.code, 0, group.stderr);
    assert.match(group.stdout, /^Usage: keytower keys \[options\] \[command\]/);
  });

  test('closed stdout exits 0 quietly', async () => {
    // The reader closes the pipe after the first chunk, as `| head -1` does. The follow mode of
    // `audit tail` writes again when the next record arrives, after the pipe is closed.
    const first = await runCli(createArgs('cli-epipe-first'), cliEnv);
    assert.equal(first.code, 0, first.stderr);
    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, 'services', 'cli', 'src', 'main.ts'), 'audit', 'tail', '-n', '1'],
      {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ...cliEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolveExit) =>
      child.once('close', (exitCode) => resolveExit(exitCode)),
    );
    try {
      // The race ends the wait when the kill timer stops a CLI that printed nothing.
      await Promise.race([
        new Promise((resolveData) => child.stdout.once('data', resolveData)),
        exited,
      ]);
      child.stdout.destroy();
      const created = await runCli(createArgs('cli-epipe'), cliEnv);
      assert.equal(created.code, 0, created.stderr);
      assert.equal(await exited, 0, stderr);
      assert.equal(stderr, '');
    } finally {
      clearTimeout(timer);
      child.kill('SIGKILL');
    }

    // Here the pipe is closed before the CLI starts, so its first write of the help fails.
    const help = spawn(
      process.execPath,
      [join(REPO_ROOT, 'services', 'cli', 'src', 'main.ts'), '--help'],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    help.stdout.destroy();
    let helpStderr = '';
    help.stderr.on('data', (chunk: Buffer) => (helpStderr += chunk.toString()));
    const helpCode = await new Promise<number | null>((resolveExit) =>
      help.once('close', (exitCode) => resolveExit(exitCode)),
    );
    assert.equal(helpCode, 0, helpStderr);
    assert.equal(helpStderr, '');
  });

  test('missing settings suggest --stack dev', async () => {
    const run = await runCli(['keys', 'list'], {});
    assert.equal(run.code, 5);
    assert.match(run.stderr, /KEYTOWER_NATS_URL/);
    assert.match(run.stderr, /Pass --stack dev to use the local stack that `npm start` runs/);
  });

  test('audit tail shows rejection codes', async () => {
    const rejected = await runCli(
      ['--json', ...createArgs('cli-audit-rejected', ['--actor', 'user:mallory'])],
      cliEnv,
    );
    assert.equal(rejected.code, 1);
    const { keyId } = JSON.parse(rejected.stdout) as { keyId: string };

    let line: string | undefined;
    const deadline = Date.now() + 15_000;
    while (line === undefined && Date.now() < deadline) {
      const tail = await runCli(['audit', 'tail', '--no-follow', '-n', '5'], cliEnv);
      assert.equal(tail.code, 0, tail.stderr);
      line = tail.stdout
        .split('\n')
        .find((candidate) => candidate.includes('command.rejected') && candidate.includes(keyId));
      await new Promise((resolveWait) => setTimeout(resolveWait, 250));
    }
    assert.ok(line !== undefined, `no command.rejected record for ${keyId}`);
    assert.match(
      line,
      new RegExp(
        `keytower\\.event\\.command\\.rejected\\.v1  ${keyId}  user:mallory  [0-9a-f]{16}  rejected: not-authorized$`,
      ),
    );
  });
});
