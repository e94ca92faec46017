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
} from '@keytower/contracts';
import { parseAllowList } from '../src/authorize.ts';
import {
  type Decision,
  type DecisionSettings,
  decide,
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
): KeyCommand {
  const id = newCommandId();
  return {
    id,
    type: messageTypes.command(action),
    action,
    keyId: action === 'create' ? deriveKeyId(id) : String(data.keyId),
    actor,
    correlationid: id,
    data,
  };
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
): Decision {
  return decide({ command: keyCommand, entry: current, allowList: ALLOW_ALL, settings, now });
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
    assertRejected(run(command('tag', { keyId: KEY_ID, tags: {} }), entry()), 'not-supported');
    assertRejected(run(command('import', {}), null), 'not-supported');
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

  test('rotation during rotation is rotation-in-progress', () => {
    assertRejected(
      run(command('rotate', { keyId: KEY_ID }), busy('rotate')),
      'rotation-in-progress',
      /folds into operation op_running, which creates version 3/,
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
