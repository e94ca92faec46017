import {
  type DeadLetter,
  deadLetterSchema,
  keyIdFromSubject,
  KEY_ID_PATTERN,
  MESSAGE_ID_PATTERN,
  messageTypes,
  STREAMS,
} from '@keytower/contracts';
import { type BusMessage, PermanentError } from '@keytower/bus';
import type { KV } from '@nats-io/kv';
import { type Logger, withIds } from '@keytower/telemetry';
import { deleteEntry, readEntry, writeEntry } from './inventory.ts';
import { isRevisionConflict } from './revision.ts';
import { finishFoldedCommands } from './folds.ts';
import { changeStatus } from './status.ts';

/**
 * The `policy-dead-letters` handler. A command, operation or outcome event that a consumer
 * gave up on would leave its command `in-progress` and its key blocked by the pending
 * operation forever. This handler records `dead-lettered` (a command that already failed
 * keeps `failed`) and, for a command or operation, clears the key's pending operation. After
 * a dead-lettered outcome event the key stays blocked, because the provider did the work.
 */

export interface DeadLetterContext {
  inventory: KV;
  statuses: KV;
  clock: () => Date;
  logger: Logger;
}

/** The command a dead letter concerns, read from the original message. */
interface AffectedCommand {
  commandId: string;
  keyId: string | null;
  commandType: string | null;
  actor: string | null;
}

const MAX_ATTEMPTS = 20;

export function createDeadLetterHandler(
  context: DeadLetterContext,
): (message: BusMessage) => Promise<void> {
  return async (message) => {
    const envelope = readJson(message.data);
    if (envelope === null || envelope.type !== messageTypes.deadLetter) {
      throw new PermanentError(
        `message on ${message.subject} is not a ${messageTypes.deadLetter} envelope`,
      );
    }
    const parsed = deadLetterSchema.safeParse(envelope.data);
    if (!parsed.success) {
      throw new PermanentError(
        `invalid dead letter on ${message.subject}: ${parsed.error.message}`,
      );
    }
    const deadLetter = parsed.data;
    const affected = affectedCommand(deadLetter);
    if (affected === null) {
      context.logger.info(
        {
          originalStream: deadLetter.originalStream,
          originalSequence: deadLetter.originalSequence,
        },
        'dead letter names no command; nothing to update',
      );
      return;
    }

    const logger = withIds(context.logger, {
      commandId: affected.commandId,
      ...(affected.keyId === null ? {} : { keyId: affected.keyId }),
    });
    if (deadLetter.originalStream === STREAMS.events) {
      // The provider did the work but its outcome could not be applied. Clearing the pending
      // operation would let the inventory forget a real change (or a real key), so the key
      // stays blocked until the event is replayed.
      logger.error(
        { originalSubject: deadLetter.originalSubject, lastError: deadLetter.lastError },
        'outcome event dead-lettered; the key stays blocked until the event is replayed',
      );
    } else if (affected.keyId !== null) {
      await releaseKey(context, affected.keyId, affected.commandId, logger);
    }
    const status = await changeStatus(
      context.statuses,
      affected,
      {
        status: 'dead-lettered',
        reason: {
          code: 'dead-lettered',
          message: `${deadLetter.durable} gave up on ${deadLetter.originalSubject} after ${deadLetter.attempts} attempts (${deadLetter.reason}): ${deadLetter.lastError}`,
        },
      },
      context.clock(),
    );
    logger.warn(
      {
        durable: deadLetter.durable,
        originalSubject: deadLetter.originalSubject,
        attempts: deadLetter.attempts,
        reason: deadLetter.reason,
        status: status.status,
      },
      'command dead-lettered',
    );
  };
}

/**
 * Clears the key's pending operation when it belongs to the dead-lettered command. The
 * applied sequence moves past the operation's, so a later admission never reuses it. A key
 * whose creation was dead-lettered is removed, because nothing was created.
 */
async function releaseKey(
  context: DeadLetterContext,
  keyId: string,
  commandId: string,
  logger: Logger,
): Promise<void> {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
    const stored = await readEntry(context.inventory, keyId);
    const pending = stored?.entry.pending ?? null;
    if (stored === null || pending === null || pending.commandId !== commandId) {
      return;
    }
    await finishFoldedCommands(
      context.statuses,
      keyId,
      pending.foldedCommandIds ?? [],
      pending,
      { kind: 'dead-lettered', message: `operation ${pending.operationId} was dead-lettered` },
      context.clock(),
    );
    try {
      if (pending.action === 'create') {
        await deleteEntry(context.inventory, keyId, stored.revision);
      } else {
        await writeEntry(
          context.inventory,
          {
            ...stored.entry,
            pending: null,
            sequence: Math.max(stored.entry.sequence, pending.sequence),
            updatedAt: context.clock().toISOString(),
          },
          stored.revision,
        );
      }
      // NOTE: if the connector did reach the provider before giving up, its late outcome event
      // carries the sequence skipped here and is dropped as a duplicate.
      logger.warn(
        { operationId: pending.operationId, action: pending.action },
        'pending operation cleared',
      );
      return;
    } catch (error) {
      if (!isRevisionConflict(error)) {
        throw error;
      }
    }
  }
  throw new Error(`inventory entry of key ${keyId} changed on each of ${MAX_ATTEMPTS} attempts`);
}

/** Reads the command id and key id from the original message, whatever stream it came from. */
function affectedCommand(deadLetter: DeadLetter): AffectedCommand | null {
  const original = readJson(Buffer.from(deadLetter.payloadBase64, 'base64'));
  if (original === null) {
    return null;
  }
  const data =
    original.data !== null && typeof original.data === 'object'
      ? (original.data as Record<string, unknown>)
      : {};
  const text = (candidate: unknown, pattern: RegExp): string | null =>
    typeof candidate === 'string' && pattern.test(candidate) ? candidate : null;

  let commandId: string | null;
  if (deadLetter.originalStream === STREAMS.commands) {
    commandId = text(original.id, MESSAGE_ID_PATTERN);
  } else if (
    deadLetter.originalStream === STREAMS.operations ||
    deadLetter.originalStream === STREAMS.events
  ) {
    commandId = text(data.commandId, MESSAGE_ID_PATTERN);
  } else {
    return null;
  }
  if (commandId === null) {
    return null;
  }
  return {
    commandId,
    keyId: text(data.keyId, KEY_ID_PATTERN) ?? keyIdFromSubject(deadLetter.originalSubject),
    commandType:
      deadLetter.originalStream === STREAMS.commands
        ? text(original.type, /^keytower\.[a-z.-]+\.v[0-9]+$/)
        : null,
    actor: typeof original.actor === 'string' ? original.actor : null,
  };
}

function readJson(bytes: Uint8Array): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}
