import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildEnvelope, type InventoryEntry, messageTypes } from '@keytower/contracts';
import { project } from '../src/projection.ts';

const KEY_ID = 'kt_0123456789abcdef01234567';
const NOW = new Date('2026-12-04T12:00:00.000Z');

function creating(): InventoryEntry {
  return {
    keyId: KEY_ID,
    provider: 'hsm',
    purpose: 'encrypt',
    algorithm: 'AES_256',
    label: 'orders',
    tags: {},
    state: 'creating',
    primaryVersion: null,
    versions: [],
    destroyAfter: null,
    sequence: 0,
    pending: {
      operationId: 'op_create',
      commandId: 'C1',
      action: 'create',
      version: 1,
      sequence: 1,
      admittedAt: NOW.toISOString(),
    },
    createdBy: 'user:alice',
    createdAt: NOW.toISOString(),
    updatedAt: NOW.toISOString(),
    native: {},
  };
}

function event(
  name: Parameters<typeof messageTypes.keyEvent>[0],
  data: Record<string, unknown>,
  sequence: number,
  operationId: string,
) {
  const envelope = buildEnvelope({
    type: messageTypes.keyEvent(name),
    subject: KEY_ID,
    data: {
      keyId: KEY_ID,
      commandId: 'C1',
      operationId,
      provider: 'hsm',
      sequence,
      native: { handle: sequence },
      ...data,
    },
    actor: 'service:connector-hsm',
    source: 'test',
    time: NOW,
  });
  return { envelope, outcome: { keyId: KEY_ID, commandId: 'C1', operationId, sequence } };
}

describe('project', () => {
  test('created enables version 1 and clears pending', () => {
    const { envelope, outcome } = event(
      'created',
      {
        purpose: 'encrypt',
        algorithm: 'AES_256',
        label: 'orders',
        tags: { team: 'pay' },
        version: 1,
        nativeVersionId: 'obj-1',
        primaryVersion: 1,
      },
      1,
      'op_create',
    );
    const next = project(creating(), envelope, outcome, NOW);
    assert.equal(next.state, 'enabled');
    assert.equal(next.primaryVersion, 1);
    assert.equal(next.sequence, 1);
    assert.equal(next.pending, null);
    assert.deepEqual(next.tags, { team: 'pay' });
    assert.deepEqual(next.native, { handle: 1 });
    assert.deepEqual(next.versions, [
      {
        version: 1,
        nativeId: 'obj-1',
        state: 'enabled',
        createdAt: NOW.toISOString(),
        operationId: 'op_create',
        eventId: envelope.id,
      },
    ]);
  });

  test('event of another operation keeps pending', () => {
    const { envelope, outcome } = event('disabled', { version: 1 }, 1, 'op_other');
    const next = project(creating(), envelope, outcome, NOW);
    assert.equal(next.pending?.operationId, 'op_create');
    assert.equal(next.sequence, 1);
  });

  test('rotation keeps its folded rotates', () => {
    const created = event(
      'created',
      {
        purpose: 'encrypt',
        algorithm: 'AES_256',
        label: 'orders',
        tags: {},
        version: 1,
        nativeVersionId: 'obj-1',
        primaryVersion: 1,
      },
      1,
      'op_create',
    );
    const enabled = project(creating(), created.envelope, created.outcome, NOW);
    const rotating: InventoryEntry = {
      ...enabled,
      pending: {
        operationId: 'op_2',
        commandId: 'C2',
        action: 'rotate',
        version: 2,
        sequence: 2,
        admittedAt: NOW.toISOString(),
        foldedCommandIds: ['C3', 'C4'],
      },
    };
    const rotated = event(
      'version-created',
      { version: 2, nativeVersionId: 'obj-2', primaryVersion: 2 },
      2,
      'op_2',
    );
    const next = project(rotating, rotated.envelope, rotated.outcome, NOW);
    assert.equal(next.pending, null);
    assert.deepEqual(next.versions[1]?.foldedCommandIds, ['C3', 'C4']);
    assert.equal(next.versions[0]?.foldedCommandIds, undefined);
  });

  test('rotation, disable, schedule, cancel, destroy', () => {
    const created = event(
      'created',
      {
        purpose: 'encrypt',
        algorithm: 'AES_256',
        label: 'orders',
        tags: {},
        version: 1,
        nativeVersionId: 'obj-1',
        primaryVersion: 1,
      },
      1,
      'op_create',
    );
    let entry = project(creating(), created.envelope, created.outcome, NOW);

    const rotated = event(
      'version-created',
      { version: 2, nativeVersionId: 'obj-2', primaryVersion: 2 },
      2,
      'op_2',
    );
    entry = project(entry, rotated.envelope, rotated.outcome, NOW);
    assert.equal(entry.primaryVersion, 2);
    assert.equal(entry.versions[1]?.operationId, 'op_2');
    assert.equal(entry.versions[1]?.eventId, rotated.envelope.id);
    assert.deepEqual(
      entry.versions.map((version) => version.version),
      [1, 2],
    );

    const disabled = event('disabled', { version: 1 }, 3, 'op_3');
    entry = project(entry, disabled.envelope, disabled.outcome, NOW);
    assert.deepEqual(
      entry.versions.map((version) => version.state),
      ['disabled', 'enabled'],
    );

    const scheduled = event(
      'destroy-scheduled',
      { destroyAfter: '2026-12-11T12:00:00.000Z' },
      4,
      'op_4',
    );
    entry = project(entry, scheduled.envelope, scheduled.outcome, NOW);
    assert.equal(entry.state, 'pending-destruction');
    assert.equal(entry.destroyAfter, '2026-12-11T12:00:00.000Z');

    const cancelled = event('destroy-cancelled', {}, 5, 'op_5');
    entry = project(entry, cancelled.envelope, cancelled.outcome, NOW);
    assert.equal(entry.state, 'enabled');
    assert.equal(entry.destroyAfter, null);

    const destroyed = event('destroyed', { versions: [1, 2] }, 6, 'op_6');
    entry = project(entry, destroyed.envelope, destroyed.outcome, NOW);
    assert.equal(entry.state, 'destroyed');
    assert.deepEqual(
      entry.versions.map((version) => version.state),
      ['destroyed', 'destroyed'],
    );
    assert.equal(entry.sequence, 6);
  });
});
