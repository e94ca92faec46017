import { z } from 'zod';
import { messageTypes, SUCCESS_EVENT } from './messages.ts';
import { REJECTION_CODES } from './payloads.ts';
import {
  KEY_ACTIONS,
  type KeyAction,
  KEY_ALGORITHMS,
  KEY_PURPOSES,
  PROVIDERS,
} from './vocabulary.ts';

/**
 * Command status (`kms_commands`) and the key inventory (`kms_inventory`): the two KV
 * documents policy owns and the CLI reads.
 */

export const COMMAND_STATUSES = [
  'received',
  'rejected',
  'awaiting-approval',
  'in-progress',
  'succeeded',
  'failed',
  'dead-lettered',
] as const;
export type CommandStatus = (typeof COMMAND_STATUSES)[number];

/** Statuses after which a command's entry never changes again. */
export const TERMINAL_STATUSES: readonly CommandStatus[] = [
  'rejected',
  'succeeded',
  'failed',
  'dead-lettered',
];

export function isTerminalStatus(status: CommandStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

export const commandStatusEntrySchema = z
  .object({
    commandId: z.string().min(1),
    commandType: z.string().nullable(),
    keyId: z.string().nullable(),
    actor: z.string().nullable(),
    status: z.enum(COMMAND_STATUSES),
    reason: z
      .object({ code: z.string().min(1), message: z.string().min(1), field: z.string().optional() })
      .strict()
      .optional(),
    operationId: z.string().optional(),
    terminalEvent: z
      .object({ id: z.string(), type: z.string(), subject: z.string() })
      .strict()
      .optional(),
    /** The decision that admitted or rejected the command. */
    decision: z
      .object({
        /** `folded`: a rotate satisfied by another command's rotation, with no operation of its own. */
        outcome: z.enum(['admitted', 'rejected', 'folded']),
        code: z.enum(REJECTION_CODES).optional(),
      })
      .strict()
      .optional(),
    receivedAt: z.iso.datetime({ offset: true }),
    updatedAt: z.iso.datetime({ offset: true }),
  })
  .strict();
export type CommandStatusEntry = z.infer<typeof commandStatusEntrySchema>;

/** Event types that end a command of the given action: the success event, then the failures. */
export function terminalEventTypes(action: KeyAction): { success: string[]; failure: string[] } {
  return {
    success: [messageTypes.keyEvent(SUCCESS_EVENT[action])],
    failure: [messageTypes.operationFailed, messageTypes.commandRejected],
  };
}

export const KEY_STATES = ['creating', 'enabled', 'pending-destruction', 'destroyed'] as const;
export type KeyState = (typeof KEY_STATES)[number];

export const VERSION_STATES = ['enabled', 'disabled', 'destroyed'] as const;
export type VersionState = (typeof VERSION_STATES)[number];

export const pendingOperationSchema = z
  .object({
    operationId: z.string().min(1),
    commandId: z.string().min(1),
    action: z.enum(KEY_ACTIONS),
    version: z.number().int().min(1).optional(),
    sequence: z.number().int().min(1),
    admittedAt: z.iso.datetime({ offset: true }),
    /** Rotates folded into this rotation while it was in flight; they end with it. */
    foldedCommandIds: z.array(z.string().min(1)).optional(),
  })
  .strict();
export type PendingOperation = z.infer<typeof pendingOperationSchema>;

export const inventoryEntrySchema = z
  .object({
    keyId: z.string().min(1),
    provider: z.enum(PROVIDERS),
    purpose: z.enum(KEY_PURPOSES),
    algorithm: z.enum(KEY_ALGORITHMS),
    label: z.string(),
    tags: z.record(z.string(), z.string()),
    state: z.enum(KEY_STATES),
    primaryVersion: z.number().int().min(1).nullable(),
    versions: z.array(
      z
        .object({
          version: z.number().int().min(1),
          nativeId: z.string(),
          state: z.enum(VERSION_STATES),
          /** Time of the outcome event that created the version. */
          createdAt: z.iso.datetime({ offset: true }),
          /** The operation that created the version; absent on entries projected before it was recorded. */
          operationId: z.string().optional(),
          /** Id of the outcome event that created the version; absent like `operationId`. */
          eventId: z.string().optional(),
          /** Rotates folded into the rotation that created the version, while it was in flight. */
          foldedCommandIds: z.array(z.string().min(1)).optional(),
        })
        .strict(),
    ),
    destroyAfter: z.iso.datetime({ offset: true }).nullable(),
    /** The per-key sequence of the last outcome event applied. */
    sequence: z.number().int().min(0),
    pending: pendingOperationSchema.nullable(),
    createdBy: z.string(),
    createdAt: z.iso.datetime({ offset: true }),
    updatedAt: z.iso.datetime({ offset: true }),
    /** The provider's native state from the last outcome event. */
    native: z.record(z.string(), z.unknown()),
  })
  .strict();
export type InventoryEntry = z.infer<typeof inventoryEntrySchema>;
