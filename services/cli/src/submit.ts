import {
  BUCKETS,
  buildEnvelope,
  type CommandStatusEntry,
  commandStatusEntrySchema,
  deriveKeyId,
  type Envelope,
  type InventoryEntry,
  inventoryEntrySchema,
  isTerminalStatus,
  type KeyAction,
  messageTypes,
  newCommandId,
  subjects,
} from '@keytower/contracts';
import type { Bus } from '@keytower/bus';
import type { KV } from '@nats-io/kv';
import { CliError, EXIT_CODES, type ExitCode } from './errors.ts';
import { assertStatusMatches, assertStoredCommandMatches, statusBelongsToOther } from './reuse.ts';

/** CloudEvents `source` of every command the CLI publishes. */
export const CLI_SOURCE = 'keytower/cli';

export interface SubmitOptions {
  action: KeyAction;
  /** The key the command acts on; for create, derived from the command id instead. */
  keyId: string | null;
  data: Record<string, unknown>;
  actor: string;
  /** Reuse a command id to resend the same command; a new ULID otherwise. */
  commandId?: string;
  /** Id of an earlier command this new one retries; it becomes the `causationid`. */
  retryOf?: string;
  timeoutSeconds: number;
}

/** Outcome of a submitted command. */
export interface SubmitResult {
  commandId: string;
  keyId: string;
  /** JetStream already held a message with this command id: nothing new was stored. */
  duplicate: boolean;
  streamSequence: number;
  /** The last status seen; null when none arrived before the timeout. */
  status: CommandStatusEntry | null;
  timedOut: boolean;
  /** The key's inventory entry after a successful command. */
  key: InventoryEntry | null;
}

/**
 * Publishes one key command and waits for its terminal status.
 *
 * The watch on the command's own `kms_commands` entry starts before the publish, so a status
 * written moments after the publish is never missed. A duplicate publish acknowledgement is
 * reported in the result, and the watch returns the first submission's outcome, but only after
 * the checks in reuse.ts found that the first submission was this same command. Otherwise a
 * `UsageError` names the command that owns the id.
 */
export async function submitCommand(bus: Bus, options: SubmitOptions): Promise<SubmitResult> {
  const commandId = options.commandId ?? newCommandId();
  const keyId = options.action === 'create' ? deriveKeyId(commandId) : options.keyId;
  if (keyId === null) {
    throw new CliError(`${options.action} needs a key id`, EXIT_CODES.usage);
  }

  const envelope = buildEnvelope({
    id: commandId,
    type: messageTypes.command(options.action),
    subject: keyId,
    data: options.data,
    actor: options.actor,
    source: CLI_SOURCE,
    ...(options.retryOf === undefined ? {} : { causationid: options.retryOf }),
  });

  const statuses = await bus.kv(BUCKETS.commands);
  if (options.commandId !== undefined) {
    // Past the JetStream duplicate window the publish is stored again, so only the status
    // entry shows that the id is taken.
    const earlier = await readStatusEntry(statuses, commandId);
    if (earlier !== null) {
      assertStatusMatches(earlier, envelope);
    }
  }

  const watch = await statuses.watch({ key: commandId });
  const outcome = waitForTerminalStatus(watch, envelope, options.timeoutSeconds * 1000);

  let ack;
  try {
    ack = await bus.publish(subjects.command(options.action, keyId), envelope);
  } catch (error) {
    watch.stop();
    await outcome;
    throw new CliError(`publish failed: ${errorMessage(error)}`, EXIT_CODES.unavailable, {
      cause: error,
    });
  }
  if (ack.duplicate) {
    try {
      await assertStoredCommandMatches(bus, ack.seq, envelope);
    } catch (error) {
      watch.stop();
      await outcome;
      throw error;
    }
  }

  const { status, timedOut, otherCommand } = await outcome;
  if (otherCommand !== null) {
    assertStatusMatches(otherCommand, envelope);
  }
  const key = status?.status === 'succeeded' ? await readInventoryEntry(bus, keyId) : null;
  return {
    commandId,
    keyId,
    duplicate: ack.duplicate,
    streamSequence: ack.seq,
    status,
    timedOut,
    key,
  };
}

async function readStatusEntry(
  statuses: KV,
  commandId: string,
): Promise<CommandStatusEntry | null> {
  const entry = await statuses.get(commandId);
  if (entry === null || entry.operation !== 'PUT') {
    return null;
  }
  const parsed = commandStatusEntrySchema.safeParse(entry.json());
  return parsed.success ? parsed.data : null;
}

type StatusWatch = Awaited<ReturnType<KV['watch']>>;

/**
 * Follows the status entry until it is terminal or `timeoutMs` passes. Stops early, returning
 * the entry as `otherCommand`, when the entry belongs to a different command than `sent`.
 */
async function waitForTerminalStatus(
  watch: StatusWatch,
  sent: Envelope,
  timeoutMs: number,
): Promise<{
  status: CommandStatusEntry | null;
  timedOut: boolean;
  otherCommand: CommandStatusEntry | null;
}> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    watch.stop();
  }, timeoutMs);

  let last: CommandStatusEntry | null = null;
  let otherCommand: CommandStatusEntry | null = null;
  try {
    for await (const entry of watch) {
      if (entry.operation !== 'PUT') {
        continue;
      }
      const parsed = commandStatusEntrySchema.safeParse(entry.json());
      if (!parsed.success) {
        continue;
      }
      if (statusBelongsToOther(parsed.data, sent)) {
        otherCommand = parsed.data;
        break;
      }
      last = parsed.data;
      if (isTerminalStatus(last.status)) {
        break;
      }
    }
  } finally {
    clearTimeout(timer);
    watch.stop();
  }
  return {
    status: last,
    timedOut: timedOut && (last === null || !isTerminalStatus(last.status)),
    otherCommand,
  };
}

/** Reads a key's inventory entry; null when the key is unknown. */
export async function readInventoryEntry(bus: Bus, keyId: string): Promise<InventoryEntry | null> {
  const inventory = await bus.kv(BUCKETS.inventory);
  const entry = await inventory.get(keyId);
  if (entry === null || entry.operation !== 'PUT') {
    return null;
  }
  return inventoryEntrySchema.parse(entry.json());
}

/** Maps a submit result to the CLI's exit code. */
export function exitCodeOf(result: SubmitResult): ExitCode {
  if (result.timedOut || result.status === null) {
    return EXIT_CODES.timeout;
  }
  switch (result.status.status) {
    case 'succeeded':
      return EXIT_CODES.success;
    case 'rejected':
      return EXIT_CODES.rejected;
    case 'failed':
    case 'dead-lettered':
      return EXIT_CODES.failed;
    default:
      return EXIT_CODES.timeout;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
