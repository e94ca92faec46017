import { isDeepStrictEqual } from 'node:util';
import type { Bus } from '@keytower/bus';
import { type CommandStatusEntry, type Envelope, STREAMS } from '@keytower/contracts';
import { UsageError } from './errors.ts';

/**
 * Checks of a reused `--command-id`. JetStream drops a second message with the same
 * `Nats-Msg-Id`, and policy drops a command id it has already handled, so a resend only shows
 * the first submission's outcome. That outcome is this command's outcome only when the first
 * submission was the same command: same type, key, data and actor.
 */

/** Returns the action of a command type: `keytower.command.key.rotate.v1` gives `rotate`. */
function actionOf(type: string | null): string {
  return type?.match(/^keytower\.command\.key\.([a-z-]+)\.v[0-9]+$/)?.[1] ?? type ?? 'unknown';
}

function conflictError(options: {
  commandId: string;
  type: string | null;
  keyId: string | null;
  differences?: readonly string[];
}): UsageError {
  const differences = options.differences ?? [];
  const detail =
    differences.length === 0
      ? ''
      : `; its ${differences.join(' and ')} ${differences.length === 1 ? 'differs' : 'differ'}`;
  return new UsageError(
    `command id ${options.commandId} is already used by a different command (${actionOf(options.type)} of key ${options.keyId ?? 'unknown'}${detail}): use a new --command-id, or --retry-of ${options.commandId} to send a new command that refers to it`,
  );
}

/** Returns true when a `kms_commands` entry names another command type or key than `sent`. */
export function statusBelongsToOther(entry: CommandStatusEntry, sent: Envelope): boolean {
  const otherType = entry.commandType !== null && entry.commandType !== sent.type;
  const otherKey = entry.keyId !== null && entry.keyId !== sent.subject;
  return otherType || otherKey;
}

/** Rejects a reused command id whose `kms_commands` entry belongs to another command. */
export function assertStatusMatches(entry: CommandStatusEntry, sent: Envelope): void {
  if (statusBelongsToOther(entry, sent)) {
    throw conflictError({ commandId: sent.id, type: entry.commandType, keyId: entry.keyId });
  }
}

/**
 * Compares the message JetStream stored first under this id (its sequence is the one in the
 * duplicate acknowledgement) with the one just sent, and rejects the resend when they differ.
 * Returns without a verdict when the message cannot be read, so the caller must still compare
 * the `kms_commands` entry.
 */
export async function assertStoredCommandMatches(
  bus: Bus,
  sequence: number,
  sent: Envelope,
): Promise<void> {
  let original: Envelope;
  try {
    const stored = await bus.manager.streams.getMessage(STREAMS.commands, { seq: sequence });
    if (stored === null) {
      return;
    }
    original = stored.json<Envelope>();
  } catch {
    // NOTE: NATS rejects this read on a stack started before the `cli` user could read
    // KMS_COMMANDS, and the bus logs the permission error. Only the status entry is compared then.
    return;
  }
  if (original.id !== sent.id) {
    return;
  }

  const differences = [
    original.type === sent.type ? null : 'type',
    original.subject === sent.subject ? null : 'key',
    isDeepStrictEqual(original.data, sent.data) ? null : 'data',
    original.actor === sent.actor ? null : 'actor',
  ].filter((difference) => difference !== null);
  if (differences.length > 0) {
    throw conflictError({
      commandId: sent.id,
      type: original.type,
      keyId: original.subject,
      differences,
    });
  }
}
