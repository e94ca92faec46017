import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CommandStatusEntry, InventoryEntry } from '@keytower/contracts';
import { describeSubmitResult, withOptionNames } from '../src/output.ts';
import type { SubmitResult } from '../src/submit.ts';

const COMMAND_ID = '01JF3Q7ZK8M4N2P5R6S7T8V9W0';
const KEY_ID = 'kt_0123456789abcdef01234567';
const NOW = '2026-12-04T21:00:00.000Z';

function status(fields: Partial<CommandStatusEntry>): CommandStatusEntry {
  return {
    commandId: COMMAND_ID,
    commandType: 'keytower.command.key.rotate.v1',
    keyId: KEY_ID,
    actor: 'user:alice',
    status: 'succeeded',
    receivedAt: NOW,
    updatedAt: NOW,
    ...fields,
  };
}

function result(entry: CommandStatusEntry, primaryVersion: number | null = null): SubmitResult {
  const key =
    primaryVersion === null ? null : ({ keyId: KEY_ID, primaryVersion } as InventoryEntry);
  return {
    commandId: COMMAND_ID,
    keyId: KEY_ID,
    duplicate: false,
    streamSequence: 7,
    status: entry,
    timedOut: false,
    key,
  };
}

describe('CLI output', () => {
  test('folded rotation names the other operation', () => {
    const folded = status({
      operationId: 'op_aaaaaaaaaaaaaaaaaaaaaaaa',
      reason: {
        code: 'rotation-folded',
        message: 'folded into the rotation to version 3 (operation op_aaaaaaaaaaaaaaaaaaaaaaaa)',
      },
    });
    assert.equal(
      describeSubmitResult('rotate', result(folded, 3)),
      `rotation of key ${KEY_ID} folded into the rotation by operation op_aaaaaaaaaaaaaaaaaaaaaaaa: version 3 is primary (command ${COMMAND_ID})`,
    );
  });

  test('plain rotation keeps its line', () => {
    const rotated = status({ operationId: 'op_bbbbbbbbbbbbbbbbbbbbbbbb' });
    assert.equal(
      describeSubmitResult('rotate', result(rotated, 2)),
      `rotated key ${KEY_ID}: version 2 is primary (command ${COMMAND_ID}, operation op_bbbbbbbbbbbbbbbbbbbbbbbb)`,
    );
  });

  test('rejection names the option, not the field', () => {
    const rejected = status({
      commandType: 'keytower.command.key.schedule-destroy.v1',
      status: 'rejected',
      reason: {
        code: 'pending-window-out-of-range',
        message: 'data.pendingWindowSeconds: expected 604800 to 2592000 seconds, received 60',
        field: 'data.pendingWindowSeconds',
      },
    });
    assert.equal(
      describeSubmitResult('schedule-destroy', result(rejected)),
      'rejected: pending-window-out-of-range: --pending-window: expected 604800 to 2592000 seconds, received 60',
    );
    assert.equal(
      withOptionNames('data.version: expected a number, received "x"'),
      '--version: expected a number, received "x"',
    );
  });
});
