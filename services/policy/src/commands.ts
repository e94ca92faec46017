import {
  ACTOR_PATTERN,
  buildEnvelope,
  type CommandRejectedEvent,
  type ContractIssue,
  deriveEventId,
  derivePositionId,
  type Envelope,
  keyIdFromSubject,
  KEY_ID_PATTERN,
  MESSAGE_ID_PATTERN,
  messageTypes,
  type OperationData,
  parseMessage,
  type RejectionCode,
  subjects,
} from '@keytower/contracts';
import { type Bus, type BusMessage, RetryableError } from '@keytower/bus';
import type { KV } from '@nats-io/kv';
import { type Logger, withIds } from '@keytower/telemetry';
import { type AdmissionContext, admitCommand } from './admission.ts';
import { buildOperation, type Fold, type KeyCommand, readKeyCommand } from './decide.ts';
import { readEntry } from './inventory.ts';
import { type CommandIdentity, changeStatus, recordReceived } from './status.ts';

/**
 * The `policy-commands` handler: validate, record `received`, decide, then either publish a
 * `command.rejected` event and record `rejected`, or record `in-progress` and publish the
 * operation. Every step is idempotent, so a redelivered command ends in the same place.
 */

/** CloudEvents `source` of every message policy publishes. */
export const POLICY_SOURCE = 'keytower/policy';
const POLICY_ACTOR = 'system:policy';

export interface CommandHandlerContext extends AdmissionContext {
  bus: Bus;
  statuses: KV;
  /** Called after admission and before publishing; the `after-admission` crash point kills the process here. */
  afterAdmission?: (command: KeyCommand) => void;
}

/** A rejection ready to publish: what is known about the command, and why it was rejected. */
interface RejectionInput {
  commandId: string | null;
  commandType: string | null;
  keyId: string | null;
  actor: string | null;
  correlationid: string | null;
  code: RejectionCode;
  message: string;
  field?: string;
  issues: ContractIssue[];
}

export function createCommandHandler(
  context: CommandHandlerContext,
): (message: BusMessage) => Promise<void> {
  return async (message) => {
    const parsed = parseMessage(message.data);
    if (!parsed.ok) {
      const readable = readableFields(message);
      const error = parsed.error;
      const unknownType = error.field === 'type' && error.type !== null;
      await rejectCommand(context, message, {
        ...readable,
        commandType: error.type,
        code: unknownType ? 'unknown-message-type' : 'invalid-command',
        message: error.message,
        field: error.field,
        issues: error.issues,
      });
      return;
    }

    const command = readKeyCommand(parsed.message);
    if ('outcome' in command) {
      await rejectCommand(context, message, {
        ...identityOf(parsed.message, subjectKeyId(message.subject)),
        correlationid: parsed.message.correlationid,
        code: command.code,
        message: command.message,
        ...(command.field === undefined ? {} : { field: command.field }),
        issues: [],
      });
      return;
    }
    await handleKeyCommand(context, command);
  };
}

async function handleKeyCommand(
  context: CommandHandlerContext,
  command: KeyCommand,
): Promise<void> {
  const logger = withIds(context.logger, {
    commandId: command.id,
    keyId: command.keyId,
    correlationId: command.correlationid,
  });
  const identity: CommandIdentity = {
    commandId: command.id,
    commandType: command.type,
    keyId: command.keyId,
    actor: command.actor,
  };

  const received = await recordReceived(context.statuses, identity, context.clock());
  if (!received.created) {
    const previous = received.entry;
    if (previous.status === 'in-progress') {
      await resumeOperation(context, command, logger);
      return;
    }
    if (previous.status !== 'received') {
      logger.info({ status: previous.status }, 'command already handled; dropping the repeat');
      return;
    }
  }

  const decision = await admitCommand(context, command);
  if (decision.outcome === 'reject') {
    logger.info({ code: decision.code, reason: decision.message }, 'command rejected');
    await rejectCommand(context, null, {
      ...identity,
      correlationid: command.correlationid,
      code: decision.code,
      message: decision.message,
      ...(decision.field === undefined ? {} : { field: decision.field }),
      issues: [],
    });
    return;
  }
  if (decision.outcome === 'join') {
    await changeStatus(
      context.statuses,
      identity,
      {
        status: 'in-progress',
        operationId: decision.operationId,
        reason: { code: 'rotation-folded', message: decision.message },
        decision: { outcome: 'folded' },
      },
      context.clock(),
    );
    logger.info(
      { operationId: decision.operationId, version: decision.version },
      'rotate folded into the rotation in flight',
    );
    return;
  }
  if (decision.outcome === 'fold') {
    await recordFold(context, identity, decision);
    logger.info(
      { operationId: decision.operationId, version: decision.version },
      'rotate folded into a finished rotation',
    );
    return;
  }

  await changeStatus(
    context.statuses,
    identity,
    {
      status: 'in-progress',
      operationId: decision.operation.operationId,
      decision: { outcome: 'admitted' },
    },
    context.clock(),
  );
  context.afterAdmission?.(command);
  await publishOperation(context, command, decision.operation, logger);
  logger.info(
    {
      operationId: decision.operation.operationId,
      action: command.action,
      resumed: decision.outcome === 'resume',
    },
    'operation admitted',
  );
}

/**
 * Records a folded rotate as `succeeded`, pointing at the `version-created` event of the
 * rotation that satisfied it. The command publishes no operation and no event of its own.
 */
async function recordFold(
  context: CommandHandlerContext,
  identity: CommandIdentity,
  fold: Fold,
): Promise<void> {
  const keyId = identity.keyId ?? '_';
  await changeStatus(
    context.statuses,
    identity,
    {
      status: 'succeeded',
      operationId: fold.operationId,
      reason: { code: 'rotation-folded', message: fold.message },
      terminalEvent: {
        id: fold.eventId,
        type: messageTypes.keyEvent('version-created'),
        subject: subjects.keyEvent('version-created', keyId),
      },
      decision: { outcome: 'folded' },
    },
    context.clock(),
  );
}

/**
 * Publishes again the operation of a command whose status is already `in-progress`, when the
 * key's entry still contains it as pending; does nothing once the operation has finished. The
 * operation id is the same, so JetStream drops the repeat inside its duplicate window.
 */
async function resumeOperation(
  context: CommandHandlerContext,
  command: KeyCommand,
  logger: Logger,
): Promise<void> {
  const stored = await readEntry(context.inventory, command.keyId);
  const pending = stored?.entry.pending;
  if (pending?.foldedCommandIds?.includes(command.id) === true) {
    logger.info(
      { operationId: pending.operationId },
      'redelivered rotate is folded into the rotation in flight; nothing to publish',
    );
    return;
  }
  if (
    stored === null ||
    pending === undefined ||
    pending === null ||
    pending.commandId !== command.id
  ) {
    logger.info('operation of a redelivered command already finished; nothing to resume');
    return;
  }
  await publishOperation(context, command, buildOperation(command, stored.entry, pending), logger);
  logger.info(
    { operationId: pending.operationId },
    'operation published again for a redelivered command',
  );
}

async function publishOperation(
  context: CommandHandlerContext,
  command: KeyCommand,
  operation: OperationData,
  logger: Logger,
): Promise<void> {
  const envelope = buildEnvelope({
    id: operation.operationId,
    type: messageTypes.operation(operation.action),
    subject: operation.keyId,
    data: operation,
    actor: command.actor,
    source: POLICY_SOURCE,
    correlationid: command.correlationid,
    causationid: command.id,
  });
  try {
    const ack = await context.bus.publish(
      subjects.operation(operation.provider, operation.action, operation.keyId),
      envelope,
    );
    if (ack.duplicate) {
      logger.info({ operationId: operation.operationId }, 'operation was already published');
    }
  } catch (error) {
    // The pending operation stays in the inventory entry, so the redelivered command
    // publishes the same operation id instead of admitting a second one.
    logger.warn(
      { err: error, operationId: operation.operationId },
      'operation publish failed; will retry',
    );
    throw new RetryableError(`publishing operation ${operation.operationId} failed`, {
      cause: error,
    });
  }
}

/**
 * Publishes a `command.rejected` event, then records `rejected` when the command id is
 * readable. The event comes first: if the status write fails, the redelivery publishes the
 * same event id again (dropped by JetStream) and retries the status.
 */
async function rejectCommand(
  context: CommandHandlerContext,
  message: BusMessage | null,
  rejection: RejectionInput,
): Promise<void> {
  const sourceId =
    rejection.commandId ??
    (message === null ? null : derivePositionId(message.stream, message.streamSequence));
  if (sourceId === null) {
    throw new Error('a rejection needs a command id or a stream position');
  }
  const data: CommandRejectedEvent = {
    commandId: sourceId,
    commandType: rejection.commandType,
    keyId: rejection.keyId,
    code: rejection.code,
    message: rejection.message,
    issues: rejection.issues,
  };
  const eventId = deriveEventId(sourceId, messageTypes.commandRejected);
  const envelope = buildEnvelope({
    id: eventId,
    type: messageTypes.commandRejected,
    subject: rejection.keyId ?? '_',
    data,
    actor: rejection.actor ?? POLICY_ACTOR,
    source: POLICY_SOURCE,
    correlationid: rejection.correlationid ?? eventId,
    causationid: sourceId,
  });
  await context.bus.publish(subjects.commandRejected(rejection.keyId), envelope);

  if (rejection.commandId === null) {
    context.logger.warn(
      {
        stream: message?.stream,
        streamSequence: message?.streamSequence,
        code: rejection.code,
        reason: rejection.message,
      },
      'unreadable command rejected',
    );
    return;
  }
  await changeStatus(
    context.statuses,
    {
      commandId: rejection.commandId,
      commandType: rejection.commandType,
      keyId: rejection.keyId,
      actor: rejection.actor,
    },
    {
      status: 'rejected',
      reason: {
        code: rejection.code,
        message: rejection.message,
        ...(rejection.field === undefined ? {} : { field: rejection.field }),
      },
      decision: { outcome: 'rejected', code: rejection.code },
    },
    context.clock(),
  );
}

/** Reads the key id from the last subject token, when it is a well-formed key id. */
function subjectKeyId(subject: string): string | null {
  const keyId = keyIdFromSubject(subject);
  return keyId !== null && KEY_ID_PATTERN.test(keyId) ? keyId : null;
}

function identityOf(envelope: Envelope, keyId: string | null): CommandIdentity {
  return { commandId: envelope.id, commandType: envelope.type, keyId, actor: envelope.actor };
}

/**
 * Reads what can be trusted from a message that failed validation: the id, actor and
 * correlation id when they are well-formed, and the key id from the data or the subject.
 */
function readableFields(
  message: BusMessage,
): Omit<RejectionInput, 'code' | 'message' | 'issues' | 'commandType'> {
  let value: Record<string, unknown> = {};
  try {
    const decoded: unknown = JSON.parse(new TextDecoder().decode(message.data));
    if (decoded !== null && typeof decoded === 'object' && !Array.isArray(decoded)) {
      value = decoded as Record<string, unknown>;
    }
  } catch {
    value = {};
  }
  const text = (candidate: unknown, pattern: RegExp): string | null =>
    typeof candidate === 'string' && pattern.test(candidate) ? candidate : null;
  const data =
    value.data !== null && typeof value.data === 'object'
      ? (value.data as Record<string, unknown>)
      : {};
  return {
    commandId: text(value.id, MESSAGE_ID_PATTERN),
    keyId: text(data.keyId, KEY_ID_PATTERN) ?? subjectKeyId(message.subject),
    actor: text(value.actor, ACTOR_PATTERN),
    correlationid: text(value.correlationid, MESSAGE_ID_PATTERN),
  };
}
