import { messageTypes, type PendingOperation } from '@keytower/contracts';
import type { KV } from '@nats-io/kv';
import { foldedMessage } from './decide.ts';
import { type StatusChange, changeStatus } from './status.ts';

/**
 * Rotates folded into a rotation that was in flight end when that rotation ends, with the same
 * outcome. Their ids are kept in the key's pending operation until then, and afterwards in the
 * version the rotation created.
 */

/** The outcome of the rotation that folded rotates joined. */
export type FoldEnding =
  | { kind: 'succeeded'; event: { id: string; type: string; subject: string } }
  | { kind: 'failed'; event: { id: string; type: string; subject: string }; message: string }
  | { kind: 'dead-lettered'; message: string };

/**
 * Records the terminal status of each folded rotate in `commandIds`. Each write is a
 * compare-and-set that never replaces a terminal status, so running this again after a
 * redelivery changes nothing.
 */
export async function finishFoldedCommands(
  statuses: KV,
  keyId: string,
  commandIds: readonly string[],
  rotation: FoldedRotation,
  ending: FoldEnding,
  now: Date,
): Promise<void> {
  for (const commandId of commandIds) {
    await changeStatus(
      statuses,
      { commandId, commandType: messageTypes.command('rotate'), keyId, actor: null },
      foldedChange(rotation, ending),
      now,
    );
  }
}

/** The rotation folded rotates joined: its operation and the version it creates. */
export type FoldedRotation = Pick<PendingOperation, 'operationId' | 'version'>;

function foldedChange(rotation: FoldedRotation, ending: FoldEnding): StatusChange {
  const into = `the rotation to version ${rotation.version ?? '?'} (operation ${rotation.operationId})`;
  switch (ending.kind) {
    case 'succeeded':
      return {
        status: 'succeeded',
        operationId: rotation.operationId,
        reason: {
          code: 'rotation-folded',
          message: foldedMessage(rotation.version, rotation.operationId),
        },
        terminalEvent: ending.event,
      };
    case 'failed':
      return {
        status: 'failed',
        operationId: rotation.operationId,
        reason: {
          code: 'rotation-folded',
          message: `folded into ${into}, which failed: ${ending.message}`,
        },
        terminalEvent: ending.event,
      };
    case 'dead-lettered':
      return {
        status: 'dead-lettered',
        operationId: rotation.operationId,
        reason: {
          code: 'rotation-folded',
          message: `folded into ${into}, which was dead-lettered: ${ending.message}`,
        },
      };
  }
}
