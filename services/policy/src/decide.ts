import {
  type CreateCommand,
  DEFAULT_PENDING_WINDOW_SECONDS,
  deriveKeyId,
  deriveOperationId,
  type Envelope,
  type InventoryEntry,
  type KeyAction,
  MAX_PENDING_WINDOW_SECONDS,
  MIN_PENDING_WINDOW_SECONDS,
  type OperationData,
  type PendingOperation,
  type RejectionCode,
  TEST_PROFILE_MIN_PENDING_WINDOW_SECONDS,
  actionOfType,
} from '@keytower/contracts';
import { type CapabilityDescriptor, supportsAlgorithm } from '@keytower/provider';
import { type AllowList, authorize } from './authorize.ts';

/**
 * The policy decision as a pure function. Its inputs are a command, the actor allow-list, the
 * key's inventory entry, the settings, the time and, for a create or import, the provider's
 * capability descriptor. Its result is an admission (with the operation to forward and the
 * inventory entry to write), a resumption of the command's own operation, a rotate folded into
 * another rotation (joined while in flight, or ended by one already finished), or a rejection.
 * Nothing here reads the clock or the bus.
 */

/** A command that matched its contract, reduced to what the decision needs. */
export interface KeyCommand {
  id: string;
  type: string;
  action: KeyAction;
  keyId: string;
  actor: string;
  correlationid: string;
  /** The envelope `time`: when the sender issued the command, by the sender's clock. */
  time: string;
  /** The command's data, already validated against the contract of its type. */
  data: Record<string, unknown>;
}

export interface DecisionSettings {
  /** `KEYTOWER_TEST_PROFILE=true`: the pending window may go down to 1 second. */
  testProfile: boolean;
}

export interface DecisionInput {
  command: KeyCommand;
  /** The key's inventory entry, or null when the key id is unknown. */
  entry: InventoryEntry | null;
  allowList: AllowList;
  settings: DecisionSettings;
  now: Date;
  /**
   * The capability descriptor of the provider a create or import names, or null when no
   * connector for that provider has registered one. Read only for those two commands; a
   * create or import decided without it is rejected as `provider-unavailable`.
   */
  capabilities?: CapabilityDescriptor | null;
}

export interface Rejection {
  outcome: 'reject';
  code: RejectionCode;
  message: string;
  /** The command field the rejection is about, when there is one. */
  field?: string;
}

/** A rotate satisfied by a rotation that finished after the rotate was issued. */
export interface Fold {
  outcome: 'fold';
  /** The operation that made the version, and the id of its `version-created` event. */
  operationId: string;
  eventId: string;
  version: number;
  message: string;
}

/** A rotate joined to the key's rotation in flight; it ends when that rotation ends. */
export interface Join {
  outcome: 'join';
  /** The entry with the command added to the pending rotation, to write by compare-and-set. */
  entry: InventoryEntry;
  operationId: string;
  version: number | undefined;
  message: string;
}

export type Decision =
  /** Write `entry` by compare-and-set, then publish `operation`. */
  | { outcome: 'admit'; entry: InventoryEntry; operation: OperationData }
  | Join
  /** The entry already contains this command's pending operation: publish it again, same id. */
  | { outcome: 'resume'; operation: OperationData }
  | Fold
  | Rejection;

/**
 * How far a rotate's `time` may be from policy's clock, either way, for the rotate to be
 * folded into a finished rotation. Outside it the sender's clock is not trusted and the rotate
 * is decided as a new rotation. Commands sent together arrive within seconds, and clocks kept
 * by NTP differ by far less than this. A wider window would only let a sender whose clock runs
 * minutes late have its rotate folded into a rotation it was really issued after.
 *
 * NOTE: the finish time is the `version-created` event time, from the connector's clock. A
 * sender clock up to 2 minutes late can still fold a rotate issued just after a rotation, and
 * one early by as much can get a new rotation for a rotate issued just before one finished.
 */
export const MAX_FOLD_CLOCK_SKEW_MS = 2 * 60 * 1000;

/** Most rotates one rotation in flight takes in; more are rejected as `rotation-in-progress`. */
export const MAX_FOLDED_COMMANDS = 100;

/** Message of a rotate folded into a rotation that finished after the rotate was issued. */
export function foldedMessage(version: number | undefined, operationId: string): string {
  return `folded into the rotation to version ${version ?? '?'} (operation ${operationId}), which finished after this command was issued`;
}

function reject(code: RejectionCode, message: string, field?: string): Rejection {
  return field === undefined
    ? { outcome: 'reject', code, message }
    : { outcome: 'reject', code, message, field };
}

/**
 * Reads the action and key id of a parsed command envelope. A create's key id is the envelope
 * subject and must be derived from the command id, so a client cannot choose (or take over) a
 * key id. Every other command names its key in `data.keyId`, and the subject must agree.
 */
export function readKeyCommand(envelope: Envelope): KeyCommand | Rejection {
  const action = actionOfType(envelope.type) as KeyAction | null;
  if (action === null || !envelope.type.startsWith('keytower.command.key.')) {
    return reject('unknown-message-type', `type ${envelope.type} is not a key command`, 'type');
  }
  const data = envelope.data as Record<string, unknown>;

  let keyId: string;
  if (action === 'create' || action === 'import') {
    keyId = deriveKeyId(envelope.id);
    if (envelope.subject !== keyId) {
      return reject(
        'invalid-command',
        `subject: expected the key id derived from command id ${envelope.id} (${keyId}), received "${envelope.subject}"`,
        'subject',
      );
    }
  } else {
    keyId = String(data.keyId);
    if (envelope.subject !== keyId) {
      return reject(
        'invalid-command',
        `subject: expected the key id of data.keyId ("${keyId}"), received "${envelope.subject}"`,
        'subject',
      );
    }
  }

  return {
    id: envelope.id,
    type: envelope.type,
    action,
    keyId,
    actor: envelope.actor,
    correlationid: envelope.correlationid,
    time: envelope.time,
    data,
  };
}

/** Decides one command. See the module comment. */
export function decide(input: DecisionInput): Decision {
  const { command, entry } = input;

  const authorization = authorize(
    { actor: command.actor, action: command.action, keyId: command.keyId },
    input.allowList,
  );
  if (!authorization.allowed) {
    return reject('not-authorized', authorization.message);
  }

  if (command.action === 'create') {
    return decideCreate(input);
  }
  if (command.action === 'import') {
    return decideImport(input);
  }
  if (command.action === 'tag') {
    return reject('not-supported', `policy does not admit ${command.action} commands yet`);
  }

  if (entry === null) {
    return reject('key-not-found', `key ${command.keyId} not found`, 'data.keyId');
  }
  const busy = checkPending(command, entry);
  if (busy !== null) {
    return busy;
  }
  if (entry.state === 'destroyed') {
    return reject('invalid-state', `key ${entry.keyId} is destroyed`);
  }
  if (entry.state === 'creating') {
    return reject('invalid-state', `key ${entry.keyId} is still being created`);
  }

  switch (command.action) {
    case 'rotate':
      return decideRotate(input, entry);
    case 'disable':
    case 'enable':
      return decideVersionState(input, entry);
    case 'schedule-destroy':
      return decideScheduleDestroy(input, entry);
    case 'cancel-destroy':
      return decideCancelDestroy(input, entry);
    case 'destroy':
      return decideDestroy(input, entry);
  }
}

/**
 * Resumes the command's own pending operation, or rejects the command because another
 * operation is in flight for the key. Returns null when the key is idle.
 */
function checkPending(command: KeyCommand, entry: InventoryEntry): Decision | null {
  const pending = entry.pending;
  if (pending === null) {
    return null;
  }
  if (pending.commandId === command.id) {
    return { outcome: 'resume', operation: buildOperation(command, entry, pending) };
  }
  if (command.action === 'rotate' && pending.action === 'rotate') {
    return joinRotation(command, entry, pending);
  }
  return reject(
    'operation-in-progress',
    `key ${entry.keyId} has operation ${pending.operationId} (${pending.action}) in flight: retry after it completes`,
  );
}

/**
 * Folds a rotate into the rotation in flight: it was issued before that rotation finished, so
 * the version being made satisfies it. A repeat of a command already folded in joins again
 * without changing the list.
 */
function joinRotation(
  command: KeyCommand,
  entry: InventoryEntry,
  pending: PendingOperation,
): Decision {
  const folded = pending.foldedCommandIds ?? [];
  if (!folded.includes(command.id) && folded.length >= MAX_FOLDED_COMMANDS) {
    return reject(
      'rotation-in-progress',
      `key ${entry.keyId} is already rotating (operation ${pending.operationId}) and ${folded.length} rotates are folded into it; retry after it completes`,
    );
  }
  const foldedCommandIds = folded.includes(command.id) ? folded : [...folded, command.id];
  return {
    outcome: 'join',
    entry: { ...entry, pending: { ...pending, foldedCommandIds } },
    operationId: pending.operationId,
    version: pending.version,
    message: `folded into the rotation to version ${pending.version ?? '?'} (operation ${pending.operationId}), which is in flight; this command ends when it does`,
  };
}

function decideCreate(input: DecisionInput): Decision {
  const { command, entry, now } = input;
  if (entry !== null) {
    if (entry.pending !== null && entry.pending.commandId === command.id) {
      return { outcome: 'resume', operation: buildOperation(command, entry, entry.pending) };
    }
    return reject('key-exists', `key ${command.keyId} already exists`);
  }

  const data = command.data as CreateCommand;
  const unsupported = checkProvider(input, data);
  if (unsupported !== null) {
    return unsupported;
  }
  const timestamp = now.toISOString();
  const pending = pendingOperation(command, 1, 1, now);
  const created: InventoryEntry = {
    keyId: command.keyId,
    provider: data.provider,
    purpose: data.purpose,
    algorithm: data.algorithm,
    label: data.label,
    tags: data.tags ?? {},
    state: 'creating',
    primaryVersion: null,
    versions: [],
    destroyAfter: null,
    sequence: 0,
    pending,
    createdBy: command.actor,
    createdAt: timestamp,
    updatedAt: timestamp,
    native: {},
  };
  return admit(command, created, pending);
}

function decideImport(input: DecisionInput): Decision {
  const data = input.command.data as CreateCommand;
  const unsupported = checkProvider(input, data);
  if (unsupported !== null) {
    return unsupported;
  }
  if (input.capabilities?.import.supported !== true) {
    return reject(
      'not-supported',
      `provider ${data.provider} does not support key import`,
      'data.provider',
    );
  }
  return reject('not-supported', 'policy does not admit import commands yet');
}

/**
 * Rejects a create or import whose provider has no registered connector, or whose connector
 * cannot make the requested algorithm for the purpose. Admitting it would leave an operation
 * that no connector ever consumes. Returns null when the provider can serve the command.
 */
function checkProvider(
  input: DecisionInput,
  data: Pick<CreateCommand, 'provider' | 'purpose' | 'algorithm'>,
): Rejection | null {
  const descriptor = input.capabilities ?? null;
  if (descriptor === null) {
    return reject(
      'provider-unavailable',
      `provider ${data.provider} is unavailable: no connector-${data.provider} has registered its capabilities; run a connector for ${data.provider}, or choose a provider whose connector is registered`,
      'data.provider',
    );
  }
  if (!supportsAlgorithm(descriptor, data.purpose, data.algorithm)) {
    const supported = [
      ...new Set(descriptor.purposes[data.purpose].flatMap((entry) => entry.keytowerAlgorithms)),
    ];
    return reject(
      'not-supported',
      `algorithm ${data.algorithm} is not supported for ${data.purpose} keys by provider ${data.provider} (supported: ${supported.join(', ') || 'none'})`,
      'data.algorithm',
    );
  }
  return null;
}

function decideRotate(input: DecisionInput, entry: InventoryEntry): Decision {
  const fold = findFold(input, entry);
  if (fold !== null) {
    return fold;
  }
  if (entry.state === 'pending-destruction') {
    return reject(
      'invalid-state',
      `key ${entry.keyId} is pending destruction until ${entry.destroyAfter}: cancel the destruction before rotating`,
    );
  }
  const highest = Math.max(0, ...entry.versions.map((version) => version.version));
  return admitNext(input, entry, highest + 1);
}

/**
 * Folds a rotate into the key's latest rotation when that rotation finished at or after the
 * rotate's own `time`: the sender asked for a new version while that one was being made, so
 * the new version satisfies the request. Version 1 comes from the create and never folds a
 * rotate, and neither does a version whose operation was not recorded.
 */
function findFold(input: DecisionInput, entry: InventoryEntry): Fold | null {
  const issuedAt = Date.parse(input.command.time);
  if (Number.isNaN(issuedAt) || Math.abs(issuedAt - input.now.getTime()) > MAX_FOLD_CLOCK_SKEW_MS) {
    return null;
  }
  const newest = entry.versions.reduce<InventoryEntry['versions'][number] | null>(
    (found, version) => (found === null || version.version > found.version ? version : found),
    null,
  );
  if (
    newest === null ||
    newest.version === 1 ||
    newest.operationId === undefined ||
    newest.eventId === undefined ||
    Date.parse(newest.createdAt) < issuedAt
  ) {
    return null;
  }
  return {
    outcome: 'fold',
    operationId: newest.operationId,
    eventId: newest.eventId,
    version: newest.version,
    message: foldedMessage(newest.version, newest.operationId),
  };
}

function decideVersionState(input: DecisionInput, entry: InventoryEntry): Decision {
  const action = input.command.action as 'disable' | 'enable';
  const number = Number(input.command.data.version);
  const version = entry.versions.find((candidate) => candidate.version === number);
  if (version === undefined) {
    const known = entry.versions.map((candidate) => candidate.version).join(', ') || 'none';
    return reject(
      'version-not-found',
      `key ${entry.keyId} has no version ${number} (versions: ${known})`,
      'data.version',
    );
  }
  if (version.state === 'destroyed') {
    return reject(
      'invalid-state',
      `version ${number} of key ${entry.keyId} is destroyed`,
      'data.version',
    );
  }
  const target = action === 'disable' ? 'disabled' : 'enabled';
  if (version.state === target) {
    return reject(
      'invalid-state',
      `version ${number} of key ${entry.keyId} is already ${target}`,
      'data.version',
    );
  }
  if (action === 'enable' && entry.state === 'pending-destruction') {
    return reject(
      'invalid-state',
      `key ${entry.keyId} is pending destruction until ${entry.destroyAfter}: cancel the destruction before enabling a version`,
    );
  }
  return admitNext(input, entry, number);
}

/** Returns the pending window of a schedule-destroy, or a rejection when it is out of range. */
export function pendingWindowSeconds(
  requested: number | undefined,
  settings: DecisionSettings,
): number | Rejection {
  const seconds = requested ?? DEFAULT_PENDING_WINDOW_SECONDS;
  const minimum = settings.testProfile
    ? TEST_PROFILE_MIN_PENDING_WINDOW_SECONDS
    : MIN_PENDING_WINDOW_SECONDS;
  if (seconds < minimum || seconds > MAX_PENDING_WINDOW_SECONDS) {
    const profile = settings.testProfile ? ' (test profile)' : '';
    return reject(
      'pending-window-out-of-range',
      `data.pendingWindowSeconds: expected ${minimum} to ${MAX_PENDING_WINDOW_SECONDS} seconds${profile}, received ${seconds}`,
      'data.pendingWindowSeconds',
    );
  }
  return seconds;
}

function decideScheduleDestroy(input: DecisionInput, entry: InventoryEntry): Decision {
  if (entry.state === 'pending-destruction') {
    return reject(
      'invalid-state',
      `key ${entry.keyId} is already pending destruction until ${entry.destroyAfter}`,
    );
  }
  const window = pendingWindowSeconds(
    input.command.data.pendingWindowSeconds as number | undefined,
    input.settings,
  );
  if (typeof window !== 'number') {
    return window;
  }
  return admitNext(input, entry, undefined);
}

function decideCancelDestroy(input: DecisionInput, entry: InventoryEntry): Decision {
  if (entry.state !== 'pending-destruction') {
    return reject(
      'invalid-state',
      `key ${entry.keyId} is not pending destruction (state: ${entry.state})`,
    );
  }
  return admitNext(input, entry, undefined);
}

function decideDestroy(input: DecisionInput, entry: InventoryEntry): Decision {
  if (entry.state !== 'pending-destruction' || entry.destroyAfter === null) {
    return reject(
      'invalid-state',
      `key ${entry.keyId} is not pending destruction (state: ${entry.state}): schedule the destruction first`,
    );
  }
  if (input.now.getTime() < Date.parse(entry.destroyAfter)) {
    return reject(
      'pending-window-not-passed',
      `key ${entry.keyId} may be destroyed after ${entry.destroyAfter}, not before`,
    );
  }
  return admitNext(input, entry, undefined);
}

function admitNext(
  input: DecisionInput,
  entry: InventoryEntry,
  version: number | undefined,
): Decision {
  const pending = pendingOperation(input.command, entry.sequence + 1, version, input.now);
  const updated: InventoryEntry = { ...entry, pending, updatedAt: input.now.toISOString() };
  return admit(input.command, updated, pending);
}

function admit(command: KeyCommand, entry: InventoryEntry, pending: PendingOperation): Decision {
  return { outcome: 'admit', entry, operation: buildOperation(command, entry, pending) };
}

function pendingOperation(
  command: KeyCommand,
  sequence: number,
  version: number | undefined,
  now: Date,
): PendingOperation {
  const pending: PendingOperation = {
    operationId: deriveOperationId(command.id),
    commandId: command.id,
    action: command.action,
    sequence,
    admittedAt: now.toISOString(),
  };
  if (version !== undefined) {
    pending.version = version;
  }
  return pending;
}

/**
 * Builds the operation data from the entry and its pending operation only (never from the
 * clock), so a resumed command publishes exactly the operation it published the first time.
 */
export function buildOperation(
  command: KeyCommand,
  entry: InventoryEntry,
  pending: PendingOperation,
): OperationData {
  const params: Record<string, unknown> = { ...command.data };
  const operation: OperationData = {
    operationId: pending.operationId,
    commandId: pending.commandId,
    action: pending.action,
    keyId: entry.keyId,
    provider: entry.provider,
    sequence: pending.sequence,
    key: {
      purpose: entry.purpose,
      algorithm: entry.algorithm,
      label: entry.label,
      tags: entry.tags,
    },
    params,
    versions: entry.versions.map((version) => ({
      version: version.version,
      nativeId: version.nativeId,
      state: version.state,
    })),
  };
  if (pending.version !== undefined) {
    operation.version = pending.version;
  }
  if (pending.action === 'schedule-destroy') {
    const seconds = Number(command.data.pendingWindowSeconds ?? DEFAULT_PENDING_WINDOW_SECONDS);
    params.pendingWindowSeconds = seconds;
    operation.destroyAfter = new Date(
      Date.parse(pending.admittedAt) + seconds * 1000,
    ).toISOString();
  }
  return operation;
}
