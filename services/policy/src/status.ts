import {
  type CommandStatus,
  type CommandStatusEntry,
  commandStatusEntrySchema,
  isTerminalStatus,
} from '@keytower/contracts';
import type { KV } from '@nats-io/kv';
import { isRevisionConflict } from './revision.ts';

/**
 * Writes to `kms_commands`, one entry per command id. Every write is a compare-and-set on
 * the entry's revision, and a terminal status is never replaced. So a late or repeated write
 * (a redelivered command, a dead letter after an `operation.failed`) cannot move a finished
 * command back to an earlier status.
 */

/** Identity of a command, as far as it could be read, stored when its entry is created. */
export interface CommandIdentity {
  commandId: string;
  commandType: string | null;
  keyId: string | null;
  actor: string | null;
}

/** The fields a status change sets. */
export type StatusChange = Partial<
  Pick<CommandStatusEntry, 'reason' | 'operationId' | 'terminalEvent' | 'decision'>
> & { status: CommandStatus };

const MAX_ATTEMPTS = 20;

function encode(entry: CommandStatusEntry): string {
  return JSON.stringify(commandStatusEntrySchema.parse(entry));
}

/** Reads a command's status entry; null when none exists. */
export async function readStatus(
  kv: KV,
  commandId: string,
): Promise<{ entry: CommandStatusEntry; revision: number } | null> {
  const stored = await kv.get(commandId);
  if (stored === null || stored.operation !== 'PUT') {
    return null;
  }
  return { entry: commandStatusEntrySchema.parse(stored.json()), revision: stored.revision };
}

/**
 * Creates the `received` entry of a new command. Returns the existing entry instead when the
 * command id is already known, which is how a command repeated beyond JetStream's duplicate
 * window is recognised.
 */
export async function recordReceived(
  kv: KV,
  identity: CommandIdentity,
  now: Date,
): Promise<
  { created: true; entry: CommandStatusEntry } | { created: false; entry: CommandStatusEntry }
> {
  const timestamp = now.toISOString();
  const entry: CommandStatusEntry = {
    ...identity,
    status: 'received',
    receivedAt: timestamp,
    updatedAt: timestamp,
  };
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
    try {
      await kv.create(identity.commandId, encode(entry));
      return { created: true, entry };
    } catch (error) {
      if (!isRevisionConflict(error)) {
        throw error;
      }
    }
    const existing = await readStatus(kv, identity.commandId);
    if (existing !== null) {
      return { created: false, entry: existing.entry };
    }
  }
  throw new Error(
    `could not create the status entry of command ${identity.commandId}: it kept changing`,
  );
}

/**
 * Applies a status change. A terminal entry is left as it is and returned unchanged; an
 * entry that does not exist yet is created with the identity given.
 */
export async function changeStatus(
  kv: KV,
  identity: CommandIdentity,
  change: StatusChange,
  now: Date,
): Promise<CommandStatusEntry> {
  const timestamp = now.toISOString();
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
    const current = await readStatus(kv, identity.commandId);
    if (current !== null && isTerminalStatus(current.entry.status)) {
      return current.entry;
    }

    const base: CommandStatusEntry = current?.entry ?? {
      ...identity,
      status: 'received',
      receivedAt: timestamp,
      updatedAt: timestamp,
    };
    const next: CommandStatusEntry = {
      ...base,
      commandType: base.commandType ?? identity.commandType,
      keyId: base.keyId ?? identity.keyId,
      actor: base.actor ?? identity.actor,
      ...change,
      updatedAt: timestamp,
    };
    try {
      if (current === null) {
        await kv.create(identity.commandId, encode(next));
      } else {
        await kv.update(identity.commandId, encode(next), current.revision);
      }
      return next;
    } catch (error) {
      if (!isRevisionConflict(error)) {
        throw error;
      }
    }
  }
  throw new Error(`could not update the status of command ${identity.commandId}: it kept changing`);
}
