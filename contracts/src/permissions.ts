import { subjects } from './subjects.ts';
import { BUCKETS, type ConsumerSpec, STREAMS, topology } from './topology.ts';
import { PROVIDERS } from './vocabulary.ts';

/**
 * NATS users and their permissions, derived from the topology. Each service may publish only
 * its own subjects, pull only its own durables, touch only its own KV buckets and receive
 * replies only on its own inbox prefix (`_INBOX_<user>`). Only `admin` may manage streams.
 */

export interface UserPermissions {
  user: string;
  description: string;
  publish: { allow: string[]; deny: string[] };
  subscribe: { allow: string[]; deny: string[] };
}

interface UserGrant {
  user: string;
  description: string;
  publishes: string[];
  readsBuckets: string[];
  writesBuckets: string[];
  /** Streams the user may read with ephemeral ordered consumers (watching, tailing). */
  readsStreams: string[];
  /** Streams the user may read single messages from, by sequence, without creating consumers. */
  readsMessages?: string[];
}

/** Returns the reply-inbox prefix a user's connections must use (`inboxPrefix` in nats.js). */
export function inboxPrefix(user: string): string {
  return `_INBOX_${user.replace(/[^A-Za-z0-9]/g, '_')}`;
}

/** Returns the environment variable that contains a user's NATS password for nats-server. */
export function passwordVariable(user: string): string {
  return `KEYTOWER_NATS_PASSWORD_${user.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

const CONNECTORS = PROVIDERS.map((provider) => `connector-${provider}`);

const GRANTS: UserGrant[] = [
  {
    user: 'policy',
    description: 'Decides commands, forwards operations, owns the inventory and command status',
    publishes: [subjects.all.operations, subjects.all.rejections, 'kms.evt.v1.approval.>'],
    readsBuckets: [BUCKETS.identities, BUCKETS.policy, BUCKETS.capabilities],
    writesBuckets: [BUCKETS.inventory, BUCKETS.commands, BUCKETS.approvals],
    readsStreams: [],
  },
  ...CONNECTORS.map((user): UserGrant => ({
    user,
    description: `Performs ${user.replace('connector-', '')} operations and reports outcomes`,
    publishes: [subjects.all.keyEvents, subjects.all.operationFailures],
    readsBuckets: [],
    writesBuckets: [BUCKETS.capabilities],
    readsStreams: [],
  })),
  {
    user: 'audit',
    description: 'The single fenced audit writer',
    publishes: [subjects.all.audit],
    readsBuckets: [],
    writesBuckets: [BUCKETS.auditHead, BUCKETS.leases],
    readsStreams: [STREAMS.audit],
  },
  {
    user: 'sink-clickhouse',
    description: 'Copies audit records into ClickHouse',
    publishes: [],
    readsBuckets: [],
    writesBuckets: [BUCKETS.leases],
    readsStreams: [],
  },
  {
    user: 'sink-kafka',
    description: 'Copies audit records to the Kafka SIEM topic',
    publishes: [],
    readsBuckets: [],
    writesBuckets: [BUCKETS.leases],
    readsStreams: [],
  },
  {
    user: 'scheduler',
    description: 'Publishes due rotations and destructions as system:scheduler',
    publishes: [subjects.all.commands],
    readsBuckets: [BUCKETS.inventory],
    writesBuckets: [BUCKETS.schedules, BUCKETS.leases],
    readsStreams: [],
  },
  {
    user: 'incident',
    description: 'Runs incident response and publishes containment commands as system:incident',
    publishes: [subjects.all.commands, subjects.all.incidentEvents, subjects.all.compromisedEvents],
    readsBuckets: [BUCKETS.inventory],
    writesBuckets: [BUCKETS.incidents],
    readsStreams: [],
  },
  {
    user: 'cli',
    description: 'The keytower command: publishes commands and reads status, inventory and audit',
    publishes: [subjects.all.commands],
    readsBuckets: [BUCKETS.commands, BUCKETS.inventory, BUCKETS.capabilities, BUCKETS.auditHead],
    writesBuckets: [],
    readsStreams: [STREAMS.audit, STREAMS.events],
    // A resend with a reused command id is compared with the original stored in KMS_COMMANDS.
    readsMessages: [STREAMS.commands],
  },
];

/** Every JetStream API subject that creates, changes or removes streams, or makes durables by the old API. */
const STREAM_ADMINISTRATION = [
  '$JS.API.STREAM.CREATE.>',
  '$JS.API.STREAM.UPDATE.>',
  '$JS.API.STREAM.DELETE.>',
  '$JS.API.STREAM.PURGE.>',
  '$JS.API.STREAM.MSG.DELETE.>',
  '$JS.API.STREAM.RESTORE.>',
  '$JS.API.CONSUMER.DURABLE.CREATE.>',
  '$JS.API.ACCOUNT.PURGE.>',
];

/**
 * Creating, changing or deleting a provisioned durable. Users that may open ephemeral ordered
 * consumers on a stream hold wildcard consumer rights on it, so the durables are denied by name.
 */
function durableAdministration(): string[] {
  return topology.consumers.flatMap((consumer) => [
    `$JS.API.CONSUMER.CREATE.${consumer.stream}.${consumer.durable}`,
    `$JS.API.CONSUMER.CREATE.${consumer.stream}.${consumer.durable}.>`,
    `$JS.API.CONSUMER.DELETE.${consumer.stream}.${consumer.durable}`,
  ]);
}

function streamRead(stream: string): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
  ];
}

/** Ephemeral ordered consumers (KV watch, audit tail) on one stream. */
function orderedConsumers(stream: string): string[] {
  return [
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

function bucketRead(bucket: string): string[] {
  return [...streamRead(`KV_${bucket}`), ...orderedConsumers(`KV_${bucket}`)];
}

function bucketWrite(bucket: string): string[] {
  return [...bucketRead(bucket), `$KV.${bucket}.>`];
}

function durableUse(consumer: ConsumerSpec): string[] {
  return [
    ...streamRead(consumer.stream),
    `$JS.API.CONSUMER.INFO.${consumer.stream}.${consumer.durable}`,
    `$JS.API.CONSUMER.MSG.NEXT.${consumer.stream}.${consumer.durable}`,
    `$JS.ACK.${consumer.stream}.${consumer.durable}.>`,
  ];
}

/** Publishing a dead letter for a durable the user consumes. */
function deadLetterPublish(consumer: ConsumerSpec): string[] {
  return consumer.stream === STREAMS.advisories
    ? []
    : [subjects.deadLetter(consumer.stream, consumer.durable)];
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

/** Builds the permissions of every NATS user, `admin` first. */
export function userPermissions(): UserPermissions[] {
  const admin: UserPermissions = {
    user: 'admin',
    description: 'Provisioning and operations; never used by services',
    publish: { allow: ['>'], deny: [] },
    subscribe: { allow: ['>'], deny: [] },
  };

  const services = GRANTS.map((grant): UserPermissions => {
    const consumers = topology.consumers.filter((consumer) => consumer.users.includes(grant.user));
    const publish = unique([
      '$JS.API.INFO',
      ...grant.publishes,
      ...consumers.flatMap(durableUse),
      ...consumers.flatMap(deadLetterPublish),
      ...grant.readsBuckets.flatMap(bucketRead),
      ...grant.writesBuckets.flatMap(bucketWrite),
      ...grant.readsStreams.flatMap((stream) => [
        ...streamRead(stream),
        ...orderedConsumers(stream),
      ]),
      ...(grant.readsMessages ?? []).flatMap(streamRead),
    ]);
    return {
      user: grant.user,
      description: grant.description,
      publish: { allow: publish, deny: [...STREAM_ADMINISTRATION, ...durableAdministration()] },
      subscribe: { allow: [`${inboxPrefix(grant.user)}.>`], deny: [] },
    };
  });

  return [admin, ...services];
}

/** The NATS users keytower defines, `admin` first. */
export const NATS_USERS: readonly string[] = ['admin', ...GRANTS.map((grant) => grant.user)];

function quote(value: string): string {
  return JSON.stringify(value);
}

function list(values: string[], indent: string): string {
  if (values.length === 0) return '[]';
  return `[\n${values.map((value) => `${indent}  ${quote(value)}`).join(',\n')}\n${indent}]`;
}

/**
 * Renders the `authorization` block of the NATS server configuration. Passwords are variable
 * references (`$KEYTOWER_NATS_PASSWORD_<USER>`) that nats-server resolves from its environment,
 * so the generated file holds no secret and can be committed.
 */
export function renderAuthorizationConf(): string {
  const users = userPermissions().map((permissions) => {
    const indent = '      ';
    return [
      `    # ${permissions.description}`,
      '    {',
      `      user: ${quote(permissions.user)}`,
      `      password: $${passwordVariable(permissions.user)}`,
      '      permissions: {',
      `        publish: { allow: ${list(permissions.publish.allow, indent + '  ')}, deny: ${list(permissions.publish.deny, indent + '  ')} }`,
      `        subscribe: { allow: ${list(permissions.subscribe.allow, indent + '  ')}, deny: ${list(permissions.subscribe.deny, indent + '  ')} }`,
      '      }',
      '    }',
    ].join('\n');
  });
  return [
    '# Generated by `npm run contracts:generate` from contracts/src/permissions.ts. Do not edit.',
    '# Passwords are read from the environment of nats-server, one variable per user.',
    'authorization {',
    '  users = [',
    users.join('\n'),
    '  ]',
    '}',
    '',
  ].join('\n');
}
