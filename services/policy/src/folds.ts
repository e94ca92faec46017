import { messageTypes, type PendingOperation } from '@keytower/contracts';
import type { KV } from '@nats-io/kv';
import { foldedMessage } from './decide.ts';
import { type StatusChange, changeStatus } from './status.ts';

/**
 * Rotates folded into a rotation that was in flight end when that rotation ends, with the same
 * outcome. Their ids are kept in the key's pending operation until then.
 */

/** How the rotation that the folded rotates joined has ended. */
export type FoldEnding =
  | { kind: 'succeeded'; event: { id: string; type: string; subject: string } }
  | { kind: 'failed'; event: { id: string; type: string; subject: string }; message: string }
  | { kind: 'dead-lettered'; message: string };

/**
 * Records the terminal status of every rotate folded into `pending`. Each write is a
 * compare-and-set that never replaces a terminal status, so running this again after a
 * redelivery changes nothing.
 */
export async function finishFoldedCommands(
  statuses: KV,
  keyId: string,
  pending: PendingOperation,
  ending: FoldEnding,
  now: Date,
): Promise<void> {
  for (const commandId of pending.foldedCommandIds ?? []) {
    await changeStatus(
      statuses,
      { commandId, commandType: messageTypes.command('rotate'), keyId, actor: null },
      foldedChange(pending, ending),
      now,
    );
  }
}

function foldedChange(pending: PendingOperation, ending: FoldEnding): StatusChange {
  const into = `the rotation to version ${pending.version ?? '?'} (operation ${pending.operationId})`;
  switch (ending.kind) {
    case 'succeeded':
      return {
        status: 'succeeded',
        operationId: pending.operationId,
        reason: {
          code: 'rotation-folded',
          message: foldedMessage(pending.version, pending.operationId),
        },
        terminalEvent: ending.event,
      };
    case 'failed':
      return {
        status: 'failed',
        operationId: pending.operationId,
        reason: {
          code: 'rotation-folded',
          message: `folded into ${into}, which failed: ${ending.message}`,
        },
        terminalEvent: ending.event,
      };
    case 'dead-lettered':
      return {
        status: 'dead-lettered',
        operationId: pending.operationId,
        reason: {
          code: 'rotation-folded',
          message: `folded into ${into}, which was dead-lettered: ${ending.message}`,
        },
      };
  }
}
