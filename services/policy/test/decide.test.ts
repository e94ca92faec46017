import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  buildEnvelope,
  DEFAULT_PENDING_WINDOW_SECONDS,
  deriveKeyId,
  deriveOperationId,
  type InventoryEntry,
  type KeyAction,
  messageTypes,
  newCommandId,
  type ProviderName,
} from '@keytower/contracts';
import { CAPABILITIES, type CapabilityDescriptor, HSM_CAPABILITIES } from '@keytower/provider';
import { parseAllowList } from '../src/authorize.ts';
import {
  type Decision,
  type DecisionSettings,
  decide,
  MAX_FOLD_CLOCK_SKEW_MS,
  MAX_FOLDED_COMMANDS,
  type KeyCommand,
  pendingWindowSeconds,
  readKeyCommand,
} from '../src/decide.ts';

const NOW = new Date('2026-12-04T12:00:00.000Z');
const KEY_ID = 'kt_0123456789abcdef01234567';
const ALLOW_ALL = parseAllowList('user:alice=*');
const PRODUCTION: DecisionSettings = { testProfile: false };
const TEST_PROFILE: DecisionSettings = { testProfile: true };

function command(
  action: KeyAction,
  data: Record<string, unknown>,
  actor = 'user:alice',
  time = NOW.toISOString(),
): KeyCommand {
  const id = newCommandId();
  return {
    id,
    type: messageTypes.command(action),
    action,
    keyId: action === 'create' ? deriveKeyId(id) : String(data.keyId),
    actor,
    correlationid: id,
    time,
    data,
  };
}

/** Returns the descriptor of the command's provider, as if every connector had registered. */
function registered(keyCommand: KeyCommand): CapabilityDescriptor | null {
  const provider = keyCommand.data.provider as ProviderName | undefined;
  return provider === undefined ? null : CAPABILITIES[provider];
}

function entry(overrides: Partial<InventoryEntry> = {}): InventoryEntry {
  return {
    keyId: KEY_ID,
    provider: 'hsm',
    purpose: 'encrypt',
    algorithm: 'AES_256',
    label: 'orders',
    tags: {},
    state: 'enabled',
    primaryVersion: 2,
    versions: [
      { version: 1, nativeId: 'v1', state: 'enabled', createdAt: '2026-12-01T00:00:00.000Z' },
      { version: 2, nativeId: 'v2', state: 'enabled', createdAt: '2026-12-02T00:00:00.000Z' },
    ],
    destroyAfter: null,
    sequence: 4,
    pending: null,
    createdBy: 'user:alice',
    createdAt: '2026-12-01T00:00:00.000Z',
    updatedAt: '2026-12-02T00:00:00.000Z',
    native: {},
    ...overrides,
  };
}

function run(
  keyCommand: KeyCommand,
  current: InventoryEntry | null,
  settings: DecisionSettings = PRODUCTION,
  now = NOW,
  capabilities: CapabilityDescriptor | null = registered(keyCommand),
): Decision {
  return decide({
    command: keyCommand,
    entry: current,
    allowList: ALLOW_ALL,
    settings,
    now,
    capabilities,
  });
}

function assertRejected(decision: Decision, code: string, message?: RegExp): void {
  assert.equal(decision.outcome, 'reject');
  if (decision.outcome !== 'reject') return;
  assert.equal(decision.code, code);
  if (message !== undefined) {
    assert.match(decision.message, message);
  }
}

function admitted(decision: Decision) {
  assert.equal(decision.outcome, 'admit', JSON.stringify(decision));
  if (decision.outcome !== 'admit') throw new Error('not admitted');
  return decision;
}

const CREATE = { provider: 'hsm', purpose: 'encrypt', algorithm: 'AES_256', label: 'orders' };

describe('decide: create', () => {
  test('admits version 1 at sequence 1', () => {
    const create = command('create', CREATE);
    const decision = admitted(run(create, null));
    assert.equal(decision.entry.keyId, create.keyId);
    assert.equal(decision.entry.state, 'creating');
    assert.equal(decision.entry.sequence, 0);
    assert.equal(decision.entry.pending?.sequence, 1);
    assert.equal(decision.entry.pending?.version, 1);
    assert.equal(decision.entry.createdBy, 'user:alice');
    assert.equal(decision.operation.operationId, deriveOperationId(create.id));
    assert.equal(decision.operation.sequence, 1);
    assert.equal(decision.operation.version, 1);
    assert.deepEqual(decision.operation.key.tags, {});
  });

  test('existing key is key-exists', () => {
    const create = command('create', CREATE);
    assertRejected(run(create, entry({ keyId: create.keyId })), 'key-exists');
  });

  test('own pending create resumes with the same operation', () => {
    const create = command('create', CREATE);
    const first = admitted(run(create, null));
    const again = run(create, first.entry, PRODUCTION, new Date(NOW.getTime() + 60_000));
    assert.equal(again.outcome, 'resume');
    if (again.outcome !== 'resume') return;
    assert.deepEqual(again.operation, first.operation);
  });
});

describe('decide: provider capabilities', () => {
  test('unregistered provider is provider-unavailable', () => {
    const create = command('create', { ...CREATE, provider: 'gcp' });
    const decision = run(create, null, PRODUCTION, NOW, null);
    assertRejected(
      decision,
      'provider-unavailable',
      /^provider gcp is unavailable: no connector-gcp has registered its capabilities; run a connector for gcp, or choose a provider whose connector is registered$/,
    );
    assert.equal(decision.outcome === 'reject' ? decision.field : null, 'data.provider');
  });

  test('capabilities default to unregistered', () => {
    const create = command('create', CREATE);
    const decision = decide({
      command: create,
      entry: null,
      allowList: ALLOW_ALL,
      settings: PRODUCTION,
      now: NOW,
    });
    assertRejected(decision, 'provider-unavailable', /provider hsm/);
  });

  test('registered provider admits the create', () => {
    const create = command('create', { ...CREATE, provider: 'gcp' });
    admitted(run(create, null, PRODUCTION, NOW, CAPABILITIES.gcp));
  });

  test('unsupported algorithm is not-supported', () => {
    const create = command('create', { ...CREATE, purpose: 'encrypt', algorithm: 'RSA_3072' });
    const decision = run(create, null, PRODUCTION, NOW, HSM_CAPABILITIES);
    assertRejected(
      decision,
      'not-supported',
      /^algorithm RSA_3072 is not supported for encrypt keys by provider hsm \(supported: AES_256\)$/,
    );
    assert.equal(decision.outcome === 'reject' ? decision.field : null, 'data.algorithm');
  });

  test('own pending create resumes without capabilities', () => {
    const create = command('create', CREATE);
    const first = admitted(run(create, null));
    const again = run(create, first.entry, PRODUCTION, NOW, null);
    assert.equal(again.outcome, 'resume');
  });

  test('authorization comes before the provider check', () => {
    const create = command('create', CREATE, 'user:mallory');
    assertRejected(run(create, null, PRODUCTION, NOW, null), 'not-authorized');
  });
});

describe('decide: authorization', () => {
  test('unknown actor is not-authorized', () => {
    assertRejected(
      run(command('rotate', { keyId: KEY_ID }, 'user:mallory'), entry()),
      'not-authorized',
      /not in the policy allow-list/,
    );
  });

  test('action outside the grant is not-authorized', () => {
    const decision = decide({
      command: command('destroy', { keyId: KEY_ID }, 'user:bob'),
      entry: entry(),
      allowList: parseAllowList('user:bob=create,rotate'),
      settings: PRODUCTION,
      now: NOW,
    });
    assertRejected(decision, 'not-authorized', /may not destroy keys \(allowed: create, rotate\)/);
  });

  test('authorization comes before key lookup', () => {
    assertRejected(
      run(command('rotate', { keyId: KEY_ID }, 'user:mallory'), null),
      'not-authorized',
    );
  });
});

describe('decide: key state', () => {
  test('missing key is key-not-found', () => {
    assertRejected(run(command('rotate', { keyId: KEY_ID }), null), 'key-not-found');
  });

  test('destroyed key is invalid-state', () => {
    assertRejected(
      run(command('rotate', { keyId: KEY_ID }), entry({ state: 'destroyed' })),
      'invalid-state',
      /destroyed/,
    );
  });

  test('key still creating is invalid-state', () => {
    assertRejected(
      run(command('rotate', { keyId: KEY_ID }), entry({ state: 'creating' })),
      'invalid-state',
      /being created/,
    );
  });

  test('import and tag are not-supported', () => {
    const importData = { ...CREATE, provider: 'aws', wrappedKeyMaterial: 'AA==', importToken: 't' };
    assertRejected(run(command('tag', { keyId: KEY_ID, tags: {} }), entry()), 'not-supported');
    assertRejected(
      run(command('import', importData), null),
      'not-supported',
      /^policy does not admit import commands yet$/,
    );
    assertRejected(
      run(command('import', { ...importData, provider: 'hsm' }), null),
      'not-supported',
      /^provider hsm does not support key import$/,
    );
    assertRejected(
      run(command('import', importData), null, PRODUCTION, NOW, null),
      'provider-unavailable',
    );
  });
});

describe('decide: per-key order', () => {
  const busy = (action: KeyAction) =>
    entry({
      pending: {
        operationId: 'op_running',
        commandId: 'C-RUNNING',
        action,
        version: 3,
        sequence: 5,
        admittedAt: NOW.toISOString(),
      },
    });

  test('rotation during rotation joins it', () => {
    const rotate = command('rotate', { keyId: KEY_ID });
    const decision = run(rotate, busy('rotate'));
    assert.equal(decision.outcome, 'join', JSON.stringify(decision));
    if (decision.outcome !== 'join') return;
    assert.equal(decision.operationId, 'op_running');
    assert.equal(decision.version, 3);
    assert.deepEqual(decision.entry.pending?.foldedCommandIds, [rotate.id]);
    assert.equal(decision.entry.pending?.commandId, 'C-RUNNING');
    assert.equal(decision.entry.sequence, 4);
    assert.match(
      decision.message,
      /^folded into the rotation to version 3 \(operation op_running\), which is in flight/,
    );
  });

  test('repeated join keeps one entry', () => {
    const rotate = command('rotate', { keyId: KEY_ID });
    const first = run(rotate, busy('rotate'));
    if (first.outcome !== 'join') throw new Error(`not joined: ${JSON.stringify(first)}`);
    const again = run(rotate, first.entry);
    if (again.outcome !== 'join') throw new Error(`not joined: ${JSON.stringify(again)}`);
    assert.deepEqual(again.entry.pending?.foldedCommandIds, [rotate.id]);
  });

  test('full rotation in flight is rotation-in-progress', () => {
    const full = busy('rotate');
    if (full.pending === null) throw new Error('no pending operation');
    full.pending.foldedCommandIds = Array.from(
      { length: MAX_FOLDED_COMMANDS },
      (_, index) => `C-${index}`,
    );
    assertRejected(
      run(command('rotate', { keyId: KEY_ID }), full),
      'rotation-in-progress',
      /op_running\) and 100 rotates are folded into it/,
    );
  });

  test('other command on a busy key is operation-in-progress', () => {
    assertRejected(
      run(command('disable', { keyId: KEY_ID, version: 1 }), busy('rotate')),
      'operation-in-progress',
      /op_running \(rotate\)/,
    );
    assertRejected(
      run(command('rotate', { keyId: KEY_ID }), busy('disable')),
      'operation-in-progress',
    );
  });

  test('own pending operation resumes', () => {
    const rotate = command('rotate', { keyId: KEY_ID });
    const first = admitted(run(rotate, entry()));
    const again = run(rotate, first.entry);
    assert.equal(again.outcome, 'resume');
    if (again.outcome !== 'resume') return;
    assert.deepEqual(again.operation, first.operation);
  });

  test('admission takes the next sequence', () => {
    const decision = admitted(
      run(
        command('cancel-destroy', { keyId: KEY_ID }),
        entry({ state: 'pending-destruction', destroyAfter: NOW.toISOString() }),
      ),
    );
    assert.equal(decision.entry.pending?.sequence, 5);
    assert.equal(decision.operation.sequence, 5);
    assert.equal(decision.entry.sequence, 4);
  });
});

describe('decide: rotate folds', () => {
  const FINISHED = '2026-12-04T11:59:58.000Z';
  const rotated = (createdAt = FINISHED) =>
    entry({
      versions: [
        { version: 1, nativeId: 'v1', state: 'enabled', createdAt: '2026-12-01T00:00:00.000Z' },
        {
          version: 2,
          nativeId: 'v2',
          state: 'enabled',
          createdAt,
          operationId: 'op_rotation',
          eventId: 'ev_rotation',
        },
      ],
    });

  test('rotation finished after issue folds', () => {
    const rotate = command('rotate', { keyId: KEY_ID }, 'user:alice', '2026-12-04T11:59:57.500Z');
    const decision = run(rotate, rotated());
    assert.equal(decision.outcome, 'fold', JSON.stringify(decision));
    if (decision.outcome !== 'fold') return;
    assert.equal(decision.operationId, 'op_rotation');
    assert.equal(decision.eventId, 'ev_rotation');
    assert.equal(decision.version, 2);
    assert.equal(
      decision.message,
      'folded into the rotation to version 2 (operation op_rotation), which finished after this command was issued',
    );
  });

  test('rotation finished at issue time folds', () => {
    const rotate = command('rotate', { keyId: KEY_ID }, 'user:alice', FINISHED);
    assert.equal(run(rotate, rotated()).outcome, 'fold');
  });

  test('rotation finished before issue admits', () => {
    const rotate = command('rotate', { keyId: KEY_ID }, 'user:alice', '2026-12-04T11:59:58.001Z');
    const decision = admitted(run(rotate, rotated()));
    assert.equal(decision.operation.version, 3);
  });

  test('version 1 never folds', () => {
    const rotate = command('rotate', { keyId: KEY_ID }, 'user:alice', '2026-12-04T11:59:00.000Z');
    const created = entry({
      primaryVersion: 1,
      versions: [
        {
          version: 1,
          nativeId: 'v1',
          state: 'enabled',
          createdAt: NOW.toISOString(),
          operationId: 'op_create',
          eventId: 'ev_create',
        },
      ],
    });
    assert.equal(admitted(run(rotate, created)).operation.version, 2);
  });

  test('unrecorded operation never folds', () => {
    const rotate = command('rotate', { keyId: KEY_ID }, 'user:alice', '2026-12-01T00:00:00.000Z');
    const decision = admitted(run(rotate, entry(), PRODUCTION, new Date('2026-12-02T00:00:00Z')));
    assert.equal(decision.operation.version, 3);
  });

  test('skewed command time never folds', () => {
    const skew = MAX_FOLD_CLOCK_SKEW_MS + 1;
    const past = new Date(NOW.getTime() - skew).toISOString();
    const future = new Date(NOW.getTime() + skew).toISOString();
    const lateFinish = new Date(NOW.getTime() + skew + 1000).toISOString();
    assert.equal(
      run(command('rotate', { keyId: KEY_ID }, 'user:alice', past), rotated()).outcome,
      'admit',
    );
    assert.equal(
      run(command('rotate', { keyId: KEY_ID }, 'user:alice', future), rotated(lateFinish)).outcome,
      'admit',
    );
  });

  test('skew within tolerance still folds', () => {
    const time = new Date(NOW.getTime() - MAX_FOLD_CLOCK_SKEW_MS + 1000).toISOString();
    const rotate = command('rotate', { keyId: KEY_ID }, 'user:alice', time);
    assert.equal(run(rotate, rotated()).outcome, 'fold');
  });
});

describe('decide: rotate', () => {
  test('creates the version after the highest', () => {
    const withGap = entry({
      versions: [
        { version: 1, nativeId: 'v1', state: 'destroyed', createdAt: NOW.toISOString() },
        { version: 4, nativeId: 'v4', state: 'disabled', createdAt: NOW.toISOString() },
      ],
    });
    const decision = admitted(run(command('rotate', { keyId: KEY_ID }), withGap));
    assert.equal(decision.entry.pending?.version, 5);
    assert.equal(decision.operation.version, 5);
    assert.deepEqual(
      decision.operation.versions.map((version) => [version.version, version.state]),
      [
        [1, 'destroyed'],
        [4, 'disabled'],
      ],
    );
  });

  test('pending destruction is invalid-state', () => {
    assertRejected(
      run(
        command('rotate', { keyId: KEY_ID }),
        entry({ state: 'pending-destruction', destroyAfter: '2026-12-11T12:00:00.000Z' }),
      ),
      'invalid-state',
      /pending destruction until 2026-12-11T12:00:00.000Z/,
    );
  });
});

describe('decide: disable and enable', () => {
  test('disable admits the named version', () => {
    const decision = admitted(run(command('disable', { keyId: KEY_ID, version: 1 }), entry()));
    assert.equal(decision.operation.version, 1);
    assert.deepEqual(decision.operation.params, { keyId: KEY_ID, version: 1 });
  });

  test('unknown version is version-not-found', () => {
    assertRejected(
      run(command('disable', { keyId: KEY_ID, version: 9 }), entry()),
      'version-not-found',
      /versions: 1, 2/,
    );
  });

  test('disabling a disabled version is invalid-state', () => {
    const current = entry();
    current.versions[0] = { ...current.versions[0]!, state: 'disabled' };
    assertRejected(
      run(command('disable', { keyId: KEY_ID, version: 1 }), current),
      'invalid-state',
      /already disabled/,
    );
    const enable = admitted(run(command('enable', { keyId: KEY_ID, version: 1 }), current));
    assert.equal(enable.operation.version, 1);
  });

  test('enabling an enabled version is invalid-state', () => {
    assertRejected(
      run(command('enable', { keyId: KEY_ID, version: 2 }), entry()),
      'invalid-state',
      /already enabled/,
    );
  });

  test('destroyed version is invalid-state', () => {
    const current = entry();
    current.versions[0] = { ...current.versions[0]!, state: 'destroyed' };
    assertRejected(
      run(command('enable', { keyId: KEY_ID, version: 1 }), current),
      'invalid-state',
      /is destroyed/,
    );
  });
});

describe('decide: destruction', () => {
  test('default window is 7 days', () => {
    const decision = admitted(run(command('schedule-destroy', { keyId: KEY_ID }), entry()));
    assert.equal(decision.operation.params.pendingWindowSeconds, DEFAULT_PENDING_WINDOW_SECONDS);
    assert.equal(decision.operation.destroyAfter, '2026-12-11T12:00:00.000Z');
  });

  test('window bounds in production', () => {
    assert.equal(pendingWindowSeconds(7 * 86_400, PRODUCTION), 7 * 86_400);
    assert.equal(pendingWindowSeconds(30 * 86_400, PRODUCTION), 30 * 86_400);
    assertRejected(
      run(
        command('schedule-destroy', { keyId: KEY_ID, pendingWindowSeconds: 7 * 86_400 - 1 }),
        entry(),
      ),
      'pending-window-out-of-range',
      /expected 604800 to 2592000 seconds, received 604799/,
    );
    assertRejected(
      run(
        command('schedule-destroy', { keyId: KEY_ID, pendingWindowSeconds: 30 * 86_400 + 1 }),
        entry(),
      ),
      'pending-window-out-of-range',
    );
    assertRejected(
      run(command('schedule-destroy', { keyId: KEY_ID, pendingWindowSeconds: 1 }), entry()),
      'pending-window-out-of-range',
    );
  });

  test('test profile allows 1 second', () => {
    const decision = admitted(
      run(
        command('schedule-destroy', { keyId: KEY_ID, pendingWindowSeconds: 1 }),
        entry(),
        TEST_PROFILE,
      ),
    );
    assert.equal(decision.operation.destroyAfter, '2026-12-04T12:00:01.000Z');
    assertRejected(
      run(
        command('schedule-destroy', { keyId: KEY_ID, pendingWindowSeconds: 0 }),
        entry(),
        TEST_PROFILE,
      ),
      'pending-window-out-of-range',
      /\(test profile\)/,
    );
    assertRejected(
      run(
        command('schedule-destroy', { keyId: KEY_ID, pendingWindowSeconds: 30 * 86_400 + 1 }),
        entry(),
        TEST_PROFILE,
      ),
      'pending-window-out-of-range',
    );
  });

  test('scheduling twice is invalid-state', () => {
    assertRejected(
      run(
        command('schedule-destroy', { keyId: KEY_ID }),
        entry({ state: 'pending-destruction', destroyAfter: '2026-12-11T12:00:00.000Z' }),
      ),
      'invalid-state',
      /already pending destruction/,
    );
  });

  test('cancel needs pending destruction', () => {
    assertRejected(
      run(command('cancel-destroy', { keyId: KEY_ID }), entry()),
      'invalid-state',
      /not pending destruction/,
    );
  });

  test('destroy needs pending destruction', () => {
    assertRejected(
      run(command('destroy', { keyId: KEY_ID }), entry()),
      'invalid-state',
      /schedule the destruction first/,
    );
  });

  test('destroy before the window is pending-window-not-passed', () => {
    const pending = entry({
      state: 'pending-destruction',
      destroyAfter: '2026-12-04T12:00:01.000Z',
    });
    assertRejected(
      run(command('destroy', { keyId: KEY_ID }), pending),
      'pending-window-not-passed',
      /after 2026-12-04T12:00:01.000Z/,
    );
    const later = new Date('2026-12-04T12:00:01.000Z');
    const decision = admitted(
      run(command('destroy', { keyId: KEY_ID }), pending, PRODUCTION, later),
    );
    assert.equal(decision.operation.action, 'destroy');
  });
});

describe('readKeyCommand', () => {
  function envelope(
    action: KeyAction,
    data: Record<string, unknown>,
    subject?: string,
    id = newCommandId(),
  ) {
    return buildEnvelope({
      id,
      type: messageTypes.command(action),
      subject: subject ?? (action === 'create' ? deriveKeyId(id) : String(data.keyId)),
      data,
      actor: 'user:alice',
      source: 'test',
    });
  }

  test('create key id comes from the command id', () => {
    const message = envelope('create', CREATE);
    const parsed = readKeyCommand(message);
    assert.ok(!('outcome' in parsed));
    assert.equal(parsed.keyId, deriveKeyId(message.id));
    assert.equal(parsed.action, 'create');
  });

  test('create on a chosen key id is invalid-command', () => {
    const parsed = readKeyCommand(envelope('create', CREATE, KEY_ID));
    assert.ok('outcome' in parsed);
    assert.equal(parsed.code, 'invalid-command');
    assert.equal(parsed.field, 'subject');
  });

  test('subject must match data.keyId', () => {
    const parsed = readKeyCommand(envelope('rotate', { keyId: KEY_ID }, 'kt_other'));
    assert.ok('outcome' in parsed);
    assert.equal(parsed.code, 'invalid-command');
    assert.match(parsed.message, /expected the key id of data.keyId/);
  });

  test('non-key command is unknown-message-type', () => {
    const report = buildEnvelope({
      type: messageTypes.incidentReport,
      subject: KEY_ID,
      data: { keyId: KEY_ID, severity: 'high', summary: 'leaked', requestedContainment: 'rotate' },
      actor: 'user:alice',
      source: 'test',
    });
    const parsed = readKeyCommand(report);
    assert.ok('outcome' in parsed);
    assert.equal(parsed.code, 'unknown-message-type');
  });
});
