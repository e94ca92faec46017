import {
  actionOfType,
  type DestroyedEvent,
  type DestroyScheduledEvent,
  type Envelope,
  type InventoryEntry,
  type KeyAction,
  type KeyCreatedEvent,
  messageTypes,
  type OperationFailedEvent,
  parseMessage,
  terminalEventTypes,
  type VersionCreatedEvent,
  type VersionStateEvent,
} from '@keytower/contracts';
import { type BusMessage, PermanentError, RetryableError } from '@keytower/bus';
import type { KV } from '@nats-io/kv';
import { type Logger, withIds } from '@keytower/telemetry';
import { type FoldEnding, finishFoldedCommands } from './folds.ts';
import { deleteEntry, readEntry, writeEntry } from './inventory.ts';
import { isRevisionConflict } from './revision.ts';
import { changeStatus } from './status.ts';

/**
 * The inventory projection: applies outcome events to `kms_inventory` in per-key sequence
 * order, clears the pending operation they finish, and records the command's terminal
 * status. An event whose sequence is already applied is a duplicate. An event that skips
 * ahead is given back (nak with a delay) until the missing event has been applied.
 */

export interface ProjectionContext {
  inventory: KV;
  statuses: KV;
  clock: () => Date;
  logger: Logger;
  /** Delay before an event that arrived ahead of a missing one is delivered again, in ms. */
  gapRetryMs: number;
}

/** The fields every outcome event carries (key events and `operation.failed`). */
interface OutcomeFields {
  keyId: string;
  commandId: string;
  operationId: string;
  sequence: number;
}

/** Result of applying one event to the entry. */
type Application = {
  kind: 'applied' | 'duplicate';
  action: KeyAction | null;
  /** The entry after the event; null when the key has none. */
  entry: InventoryEntry | null;
};

const MAX_ATTEMPTS = 20;

const KEY_EVENT_PREFIX = 'keytower.event.key.';

export function createProjectionHandler(
  context: ProjectionContext,
): (message: BusMessage) => Promise<void> {
  return async (message) => {
    const parsed = parseMessage(message.data);
    if (!parsed.ok) {
      throw new PermanentError(`invalid event on ${message.subject}: ${parsed.error.message}`);
    }
    const envelope = parsed.message;
    if (!isOutcomeEvent(envelope)) {
      return;
    }

    const outcome = envelope.data as OutcomeFields;
    const logger = withIds(context.logger, {
      commandId: outcome.commandId,
      keyId: outcome.keyId,
      operationId: outcome.operationId,
      correlationId: envelope.correlationid,
    });
    const application = await applyEvent(context, envelope, message.subject, outcome, logger);
    await finishFoldedRotates(context, envelope, message.subject, outcome, application.entry);
    await recordTerminalStatus(context, envelope, message.subject, outcome, application.action);
    if (application.kind === 'applied') {
      logger.info(
        { type: envelope.type, sequence: outcome.sequence },
        'event applied to inventory',
      );
    }
  };
}

/** Key events carrying a per-key sequence, and `operation.failed`; `compromised` has no sequence. */
function isOutcomeEvent(envelope: Envelope): boolean {
  if (envelope.type === messageTypes.operationFailed) {
    return true;
  }
  return (
    envelope.type.startsWith(KEY_EVENT_PREFIX) &&
    envelope.type !== messageTypes.keyEvent('compromised') &&
    typeof (envelope.data as { sequence?: unknown }).sequence === 'number'
  );
}

async function applyEvent(
  context: ProjectionContext,
  envelope: Envelope,
  subject: string,
  outcome: OutcomeFields,
  logger: Logger,
): Promise<Application> {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
    const stored = await readEntry(context.inventory, outcome.keyId);
    if (stored === null) {
      if (isFailedCreate(envelope)) {
        return { kind: 'duplicate', action: 'create', entry: null };
      }
      throw new RetryableError(`key ${outcome.keyId} has no inventory entry yet`, {
        retryAfterMs: context.gapRetryMs,
      });
    }

    const entry = stored.entry;
    const action = actionOf(envelope, entry, outcome);
    if (outcome.sequence <= entry.sequence) {
      logger.debug({ sequence: outcome.sequence, applied: entry.sequence }, 'duplicate event');
      return { kind: 'duplicate', action, entry };
    }
    if (outcome.sequence > entry.sequence + 1) {
      logger.info(
        { sequence: outcome.sequence, applied: entry.sequence },
        'event arrived before an earlier one of the same key; retrying later',
      );
      throw new RetryableError(
        `key ${outcome.keyId}: event sequence ${outcome.sequence} waits for ${entry.sequence + 1}`,
        { retryAfterMs: context.gapRetryMs },
      );
    }

    if (
      envelope.type === messageTypes.operationFailed &&
      entry.pending !== null &&
      entry.pending.operationId === outcome.operationId
    ) {
      // Before the entry write, which clears the pending operation, so a redelivery after a
      // failed status write still finds the folded rotates there.
      await finishFoldedCommands(
        context.statuses,
        outcome.keyId,
        entry.pending.foldedCommandIds ?? [],
        entry.pending,
        foldEnding(envelope, subject),
        context.clock(),
      );
    }

    try {
      if (isFailedCreate(envelope)) {
        // A key whose creation failed has nothing at the provider: drop its entry so it does
        // not show up as a key.
        await deleteEntry(context.inventory, outcome.keyId, stored.revision);
        return { kind: 'applied', action, entry: null };
      }
      const next = project(entry, envelope, outcome, context.clock());
      await writeEntry(context.inventory, next, stored.revision);
      return { kind: 'applied', action, entry: next };
    } catch (error) {
      if (!isRevisionConflict(error)) {
        throw error;
      }
    }
  }
  throw new Error(
    `inventory entry of key ${outcome.keyId} changed on each of ${MAX_ATTEMPTS} attempts`,
  );
}

/**
 * Ends the rotates folded into the rotation that created a version, once the version is in the
 * inventory, so a CLI waiting on one of them reads the new primary version. Runs for
 * duplicates too, because the version keeps the folded command ids.
 */
async function finishFoldedRotates(
  context: ProjectionContext,
  envelope: Envelope,
  subject: string,
  outcome: OutcomeFields,
  entry: InventoryEntry | null,
): Promise<void> {
  if (envelope.type !== messageTypes.keyEvent('version-created') || entry === null) {
    return;
  }
  const version = entry.versions.find((candidate) => candidate.operationId === outcome.operationId);
  if (version?.foldedCommandIds === undefined) {
    return;
  }
  await finishFoldedCommands(
    context.statuses,
    outcome.keyId,
    version.foldedCommandIds,
    { operationId: outcome.operationId, version: version.version },
    foldEnding(envelope, subject),
    context.clock(),
  );
}

function foldEnding(envelope: Envelope, subject: string): FoldEnding {
  const event = { id: envelope.id, type: envelope.type, subject };
  if (envelope.type === messageTypes.operationFailed) {
    return {
      kind: 'failed',
      event,
      message: (envelope.data as OperationFailedEvent).error.message,
    };
  }
  return { kind: 'succeeded', event };
}

function isFailedCreate(envelope: Envelope): boolean {
  return (
    envelope.type === messageTypes.operationFailed &&
    (envelope.data as OperationFailedEvent).action === 'create'
  );
}

/** Returns the action of the command the event finishes, from the pending operation or the event type. */
function actionOf(
  envelope: Envelope,
  entry: InventoryEntry,
  outcome: OutcomeFields,
): KeyAction | null {
  if (envelope.type === messageTypes.operationFailed) {
    return (envelope.data as OperationFailedEvent).action;
  }
  if (entry.pending !== null && entry.pending.operationId === outcome.operationId) {
    return entry.pending.action;
  }
  const eventName = envelope.type.slice(KEY_EVENT_PREFIX.length).replace(/\.v[0-9]+$/, '');
  return ACTION_BY_EVENT[eventName] ?? (actionOfType(envelope.type) as KeyAction | null);
}

const ACTION_BY_EVENT: Record<string, KeyAction> = {
  created: 'create',
  'version-created': 'rotate',
  disabled: 'disable',
  enabled: 'enable',
  'destroy-scheduled': 'schedule-destroy',
  'destroy-cancelled': 'cancel-destroy',
  destroyed: 'destroy',
  imported: 'import',
  tagged: 'tag',
};

/**
 * Returns the entry after one event. The pending operation is cleared only when the event
 * finishes it; the applied sequence always advances, so a later admission never reuses it.
 */
export function project(
  entry: InventoryEntry,
  envelope: Envelope,
  outcome: OutcomeFields,
  now: Date,
): InventoryEntry {
  const next: InventoryEntry = {
    ...entry,
    versions: entry.versions.map((version) => ({ ...version })),
    sequence: outcome.sequence,
    pending:
      entry.pending !== null && entry.pending.operationId === outcome.operationId
        ? null
        : entry.pending,
    updatedAt: now.toISOString(),
  };
  const native = (envelope.data as { native?: Record<string, unknown> }).native;
  if (native !== undefined) {
    next.native = native;
  }

  switch (envelope.type) {
    case messageTypes.keyEvent('created'):
    case messageTypes.keyEvent('imported'): {
      const data = envelope.data as KeyCreatedEvent;
      next.state = 'enabled';
      next.purpose = data.purpose;
      next.algorithm = data.algorithm;
      next.label = data.label;
      next.tags = data.tags;
      next.primaryVersion = data.primaryVersion;
      next.versions = [
        {
          version: data.version,
          nativeId: data.nativeVersionId,
          state: 'enabled',
          createdAt: envelope.time,
          operationId: outcome.operationId,
          eventId: envelope.id,
        },
      ];
      break;
    }
    case messageTypes.keyEvent('version-created'): {
      const data = envelope.data as VersionCreatedEvent;
      next.versions = [
        ...next.versions.filter((version) => version.version !== data.version),
        {
          version: data.version,
          nativeId: data.nativeVersionId,
          state: 'enabled' as const,
          createdAt: envelope.time,
          operationId: outcome.operationId,
          eventId: envelope.id,
        },
      ].sort((left, right) => left.version - right.version);
      next.primaryVersion = data.primaryVersion;
      const folded = entry.pending?.foldedCommandIds;
      if (entry.pending?.operationId === outcome.operationId && folded !== undefined) {
        next.versions = next.versions.map((version) =>
          version.version === data.version ? { ...version, foldedCommandIds: folded } : version,
        );
      }
      break;
    }
    case messageTypes.keyEvent('disabled'):
    case messageTypes.keyEvent('enabled'): {
      const data = envelope.data as VersionStateEvent;
      const state = envelope.type === messageTypes.keyEvent('disabled') ? 'disabled' : 'enabled';
      next.versions = next.versions.map((version) =>
        version.version === data.version ? { ...version, state } : version,
      );
      break;
    }
    case messageTypes.keyEvent('destroy-scheduled'): {
      const data = envelope.data as DestroyScheduledEvent;
      next.state = 'pending-destruction';
      next.destroyAfter = data.destroyAfter;
      break;
    }
    case messageTypes.keyEvent('destroy-cancelled'):
      next.state = 'enabled';
      next.destroyAfter = null;
      break;
    case messageTypes.keyEvent('destroyed'): {
      const data = envelope.data as DestroyedEvent;
      const destroyed = new Set(data.versions);
      next.state = 'destroyed';
      next.versions = next.versions.map((version) =>
        destroyed.has(version.version) || data.versions.length === 0
          ? { ...version, state: 'destroyed' }
          : version,
      );
      break;
    }
    case messageTypes.keyEvent('tagged'):
      next.tags = (envelope.data as { tags: Record<string, string> }).tags;
      break;
    default:
      // operation.failed changes nothing at the provider: only the sequence and pending advance.
      break;
  }
  return next;
}

/**
 * Records `succeeded` or `failed` with the terminal event. Runs for duplicates too, so a
 * status write lost after the inventory write is repaired when the event is delivered again.
 */
async function recordTerminalStatus(
  context: ProjectionContext,
  envelope: Envelope,
  subject: string,
  outcome: OutcomeFields,
  action: KeyAction | null,
): Promise<void> {
  const terminal = action === null ? null : terminalEventTypes(action);
  const succeeded = terminal?.success.includes(envelope.type) ?? false;
  const failed = envelope.type === messageTypes.operationFailed;
  if (!succeeded && !failed) {
    return;
  }

  const error = failed ? (envelope.data as OperationFailedEvent).error : null;
  await changeStatus(
    context.statuses,
    {
      commandId: outcome.commandId,
      commandType: action === null ? null : messageTypes.command(action),
      keyId: outcome.keyId,
      actor: envelope.actor,
    },
    {
      status: succeeded ? 'succeeded' : 'failed',
      operationId: outcome.operationId,
      terminalEvent: { id: envelope.id, type: envelope.type, subject },
      ...(error === null ? {} : { reason: { code: error.code, message: error.message } }),
    },
    context.clock(),
  );
}
