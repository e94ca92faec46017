import type { z } from 'zod';
import {
  approvalGrantCommandSchema,
  approvalRequestedEventSchema,
  commandRejectedEventSchema,
  compromisedEventSchema,
  createCommandSchema,
  deadLetterSchema,
  destroyCancelledEventSchema,
  destroyedEventSchema,
  destroyScheduledEventSchema,
  importCommandSchema,
  importedEventSchema,
  incidentOpenedEventSchema,
  incidentReportCommandSchema,
  keyCreatedEventSchema,
  keyOnlyCommandSchema,
  operationDataSchema,
  operationFailedEventSchema,
  rotateCommandSchema,
  scheduleDestroyCommandSchema,
  taggedEventSchema,
  tagCommandSchema,
  versionCommandSchema,
  versionCreatedEventSchema,
  versionStateEventSchema,
} from './payloads.ts';
import { STREAMS } from './topology.ts';
import { KEY_ACTIONS, type KeyAction, type KeyEventName, PROVIDERS } from './vocabulary.ts';

/**
 * The registry of every message keytower exchanges: its type and version, data schema,
 * subject pattern, stream, publishers and consumers. JSON Schema, AsyncAPI and the NATS
 * permissions are generated from it.
 */

export type MessageKind = 'command' | 'operation' | 'event' | 'dead-letter';

export interface MessageDefinition {
  /** The type without its version, e.g. `keytower.command.key.create`. */
  name: string;
  version: number;
  kind: MessageKind;
  description: string;
  data: z.ZodType;
  /** Subject with `{placeholders}` for AsyncAPI, e.g. `kms.cmd.v1.key.create.{keyId}`. */
  subject: string;
  stream: string;
  publishers: string[];
  consumers: string[];
}

/** Returns the full CloudEvents `type` of a message definition, e.g. `keytower.command.key.create.v1`. */
export function fullType(definition: Pick<MessageDefinition, 'name' | 'version'>): string {
  return `${definition.name}.v${definition.version}`;
}

const COMMAND_PUBLISHERS = ['cli', 'scheduler', 'incident', 'application'];
const CONNECTORS = PROVIDERS.map((provider) => `connector-${provider}`);

const COMMAND_DATA: Record<KeyAction, { data: z.ZodType; description: string }> = {
  create: { data: createCommandSchema, description: 'Create a key on a provider' },
  rotate: {
    data: rotateCommandSchema,
    description: 'Create the next key version and make it primary',
  },
  disable: { data: versionCommandSchema, description: 'Disable one key version' },
  enable: { data: versionCommandSchema, description: 'Enable one key version again' },
  'schedule-destroy': {
    data: scheduleDestroyCommandSchema,
    description: 'Schedule destruction of a key after a pending window',
  },
  'cancel-destroy': { data: keyOnlyCommandSchema, description: 'Cancel a scheduled destruction' },
  destroy: {
    data: keyOnlyCommandSchema,
    description: 'Destroy a key whose pending window has passed',
  },
  import: { data: importCommandSchema, description: 'Import wrapped key material as a new key' },
  tag: { data: tagCommandSchema, description: 'Replace the tags of a key' },
};

/** The event each action produces on success. */
export const SUCCESS_EVENT: Record<KeyAction, KeyEventName> = {
  create: 'created',
  rotate: 'version-created',
  disable: 'disabled',
  enable: 'enabled',
  'schedule-destroy': 'destroy-scheduled',
  'cancel-destroy': 'destroy-cancelled',
  destroy: 'destroyed',
  import: 'imported',
  tag: 'tagged',
};

const KEY_EVENT_DATA: Record<KeyEventName, { data: z.ZodType; description: string }> = {
  created: { data: keyCreatedEventSchema, description: 'A key and its first version were created' },
  'version-created': {
    data: versionCreatedEventSchema,
    description: 'A rotation created a new version, now primary',
  },
  disabled: { data: versionStateEventSchema, description: 'A key version was disabled' },
  enabled: { data: versionStateEventSchema, description: 'A key version was enabled' },
  'destroy-scheduled': {
    data: destroyScheduledEventSchema,
    description: 'A key is pending destruction until its window ends',
  },
  'destroy-cancelled': {
    data: destroyCancelledEventSchema,
    description: 'A scheduled destruction was cancelled',
  },
  destroyed: {
    data: destroyedEventSchema,
    description: 'A key and all its versions were destroyed',
  },
  imported: {
    data: importedEventSchema,
    description: 'Wrapped key material was imported as a new key',
  },
  tagged: { data: taggedEventSchema, description: 'The tags of a key were replaced' },
  compromised: { data: compromisedEventSchema, description: 'A key was declared compromised' },
};

const commandDefinitions: MessageDefinition[] = KEY_ACTIONS.map((action) => ({
  name: `keytower.command.key.${action}`,
  version: 1,
  kind: 'command',
  description: COMMAND_DATA[action].description,
  data: COMMAND_DATA[action].data,
  subject: `kms.cmd.v1.key.${action}.{keyId}`,
  stream: STREAMS.commands,
  publishers: COMMAND_PUBLISHERS,
  consumers: ['policy'],
}));

const operationDefinitions: MessageDefinition[] = KEY_ACTIONS.map((action) => ({
  name: `keytower.operation.key.${action}`,
  version: 1,
  kind: 'operation',
  description: `An admitted ${action} for the provider's connector to perform`,
  data: operationDataSchema,
  subject: `kms.op.v1.{provider}.${action}.{keyId}`,
  stream: STREAMS.operations,
  publishers: ['policy'],
  consumers: CONNECTORS,
}));

const keyEventDefinitions: MessageDefinition[] = (
  Object.keys(KEY_EVENT_DATA) as KeyEventName[]
).map((event) => ({
  name: `keytower.event.key.${event}`,
  version: 1,
  kind: 'event',
  description: KEY_EVENT_DATA[event].description,
  data: KEY_EVENT_DATA[event].data,
  subject: `kms.evt.v1.key.${event}.{keyId}`,
  stream: STREAMS.events,
  publishers: event === 'compromised' ? ['incident'] : CONNECTORS,
  consumers: ['policy', 'scheduler', 'incident', 'application'],
}));

const otherDefinitions: MessageDefinition[] = [
  {
    name: 'keytower.command.incident.report',
    version: 1,
    kind: 'command',
    description: 'Report a suspected key compromise',
    data: incidentReportCommandSchema,
    subject: 'kms.cmd.v1.incident.report.{keyId}',
    stream: STREAMS.commands,
    publishers: ['cli', 'application'],
    consumers: ['policy'],
  },
  {
    name: 'keytower.command.approval.grant',
    version: 1,
    kind: 'command',
    description: 'Approve or deny a command awaiting approval',
    data: approvalGrantCommandSchema,
    subject: 'kms.cmd.v1.approval.grant.{keyId}',
    stream: STREAMS.commands,
    publishers: ['cli'],
    consumers: ['policy'],
  },
  {
    name: 'keytower.event.command.rejected',
    version: 1,
    kind: 'event',
    description: 'A command was rejected: invalid, not authorised, or not admissible now',
    data: commandRejectedEventSchema,
    subject: 'kms.evt.v1.command.rejected.{keyId}',
    stream: STREAMS.events,
    publishers: ['policy'],
    consumers: ['cli', 'application'],
  },
  {
    name: 'keytower.event.operation.failed',
    version: 1,
    kind: 'event',
    description: 'A connector could not complete an operation',
    data: operationFailedEventSchema,
    subject: 'kms.evt.v1.operation.failed.{keyId}',
    stream: STREAMS.events,
    publishers: CONNECTORS,
    consumers: ['policy', 'cli', 'application'],
  },
  {
    name: 'keytower.event.incident.opened',
    version: 1,
    kind: 'event',
    description: 'An incident was opened for a key',
    data: incidentOpenedEventSchema,
    subject: 'kms.evt.v1.incident.opened.{keyId}',
    stream: STREAMS.events,
    publishers: ['incident'],
    consumers: ['application'],
  },
  {
    name: 'keytower.event.approval.requested',
    version: 1,
    kind: 'event',
    description: 'A command needs approval by a second, different approver',
    data: approvalRequestedEventSchema,
    subject: 'kms.evt.v1.approval.requested.{keyId}',
    stream: STREAMS.events,
    publishers: ['policy'],
    consumers: ['cli', 'application'],
  },
  {
    name: 'keytower.dlq.message',
    version: 1,
    kind: 'dead-letter',
    description: 'A message a consumer gave up on, with its reason and attempt count',
    data: deadLetterSchema,
    subject: 'kms.dlq.v1.{stream}.{durable}',
    stream: STREAMS.deadLetters,
    publishers: ['policy', 'audit', ...CONNECTORS],
    consumers: ['policy'],
  },
];

/** Every message definition, in a stable order. */
export const MESSAGES: readonly MessageDefinition[] = [
  ...commandDefinitions,
  ...otherDefinitions.filter((message) => message.kind === 'command'),
  ...operationDefinitions,
  ...keyEventDefinitions,
  ...otherDefinitions.filter((message) => message.kind !== 'command'),
];

const byFullType = new Map(MESSAGES.map((message) => [fullType(message), message]));

/** Looks up a message definition by its full type; undefined when none exists. */
export function messageDefinition(type: string): MessageDefinition | undefined {
  return byFullType.get(type);
}

/** Lists the versions that exist for a type name (without version). */
export function versionsOf(name: string): number[] {
  return MESSAGES.filter((message) => message.name === name).map((message) => message.version);
}

/** Full type names of commands, operations and key events, by action or event. */
export const messageTypes = {
  command: (action: KeyAction) => `keytower.command.key.${action}.v1`,
  operation: (action: KeyAction) => `keytower.operation.key.${action}.v1`,
  keyEvent: (event: KeyEventName) => `keytower.event.key.${event}.v1`,
  commandRejected: 'keytower.event.command.rejected.v1',
  operationFailed: 'keytower.event.operation.failed.v1',
  deadLetter: 'keytower.dlq.message.v1',
  incidentReport: 'keytower.command.incident.report.v1',
  approvalGrant: 'keytower.command.approval.grant.v1',
  incidentOpened: 'keytower.event.incident.opened.v1',
  approvalRequested: 'keytower.event.approval.requested.v1',
} as const;
