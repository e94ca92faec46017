import { subjects } from './subjects.ts';
import { PROVIDERS } from './vocabulary.ts';

/**
 * Streams, durable consumers and KV buckets, with an explicit value for every setting.
 * `keytower admin provision` applies exactly this; services never create any of it.
 */

/** A JetStream stream as keytower provisions it. Sizes are bytes, times are seconds. */
export interface StreamSpec {
  name: string;
  description: string;
  subjects: string[];
  /** Names of streams this stream sources from (only `KMS_AUDIT_IN`). */
  sources: string[];
  retention: 'limits' | 'workqueue' | 'interest';
  discard: 'old' | 'new';
  storage: 'file' | 'memory';
  replicas: number;
  maxAgeSeconds: number;
  maxBytes: number;
  /** -1 means unlimited. */
  maxMsgs: number;
  maxMsgSize: number;
  duplicateWindowSeconds: number;
  denyDelete: boolean;
  denyPurge: boolean;
  allowDirect: boolean;
}

/** A durable pull consumer as keytower provisions it. */
export interface ConsumerSpec {
  stream: string;
  durable: string;
  description: string;
  filterSubjects: string[];
  ackWaitSeconds: number;
  /** -1 means unlimited redelivery: used where dropping a message would lose audit history. */
  maxDeliver: number;
  /** Server-side redelivery delays; empty, because the bus naks with its own backoff. */
  backoffSeconds: number[];
  maxAckPending: number;
  deliverPolicy: 'all' | 'new';
  /** NATS users allowed to pull from and ack this consumer. */
  users: string[];
}

/** A KV bucket as keytower provisions it. */
export interface BucketSpec {
  bucket: string;
  description: string;
  history: number;
  maxBytes: number;
  /** 0 keeps entries until they are deleted. */
  ttlSeconds: number;
  storage: 'file' | 'memory';
  replicas: number;
}

export interface Topology {
  streams: StreamSpec[];
  consumers: ConsumerSpec[];
  buckets: BucketSpec[];
}

export const STREAMS = {
  commands: 'KMS_COMMANDS',
  operations: 'KMS_OPERATIONS',
  events: 'KMS_EVENTS',
  deadLetters: 'KMS_DLQ',
  auditIn: 'KMS_AUDIT_IN',
  audit: 'KMS_AUDIT',
  advisories: 'KMS_ADVISORIES',
} as const;

export const BUCKETS = {
  inventory: 'kms_inventory',
  commands: 'kms_commands',
  schedules: 'kms_schedules',
  incidents: 'kms_incidents',
  identities: 'kms_identities',
  policy: 'kms_policy',
  approvals: 'kms_approvals',
  capabilities: 'kms_capabilities',
  auditHead: 'kms_audit_head',
  leases: 'kms_leases',
} as const;

export const DURABLES = {
  policyCommands: 'policy-commands',
  policyProjection: 'policy-projection',
  policyDeadLetters: 'policy-dead-letters',
  auditWriter: 'audit-writer',
  sinkClickhouse: 'sink-clickhouse',
  sinkKafka: 'sink-kafka',
  connector: (provider: string) => `connector-${provider}`,
  advisories: (durable: string) => `advisories-${durable}`,
} as const;

const DAY = 24 * 3600;
const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/**
 * Settings shared by every keytower stream. Discard is `new`: a stream at its limit rejects
 * new messages with an error instead of silently dropping history that was never audited.
 */
const STREAM_DEFAULTS = {
  sources: [],
  retention: 'limits',
  discard: 'new',
  storage: 'file',
  replicas: 1,
  maxMsgs: -1,
  maxMsgSize: 1 * MIB,
  duplicateWindowSeconds: 2 * 3600,
  denyDelete: true,
  denyPurge: true,
  allowDirect: true,
} as const satisfies Partial<StreamSpec>;

const streams: StreamSpec[] = [
  {
    ...STREAM_DEFAULTS,
    name: STREAMS.commands,
    description: 'Versioned key lifecycle commands from clients, the CLI and internal actors',
    subjects: [subjects.all.commands],
    maxAgeSeconds: 30 * DAY,
    maxBytes: 2 * GIB,
  },
  {
    ...STREAM_DEFAULTS,
    name: STREAMS.operations,
    description: 'Operations admitted by policy, one durable consumer per provider connector',
    subjects: [subjects.all.operations],
    maxAgeSeconds: 30 * DAY,
    maxBytes: 2 * GIB,
  },
  {
    ...STREAM_DEFAULTS,
    name: STREAMS.events,
    description: 'Key lifecycle outcomes, rejections and failures',
    subjects: [subjects.all.events],
    maxAgeSeconds: 30 * DAY,
    maxBytes: 2 * GIB,
  },
  {
    ...STREAM_DEFAULTS,
    name: STREAMS.deadLetters,
    description:
      'Messages a consumer gave up on, with subject, headers, payload, attempts and last error',
    subjects: [subjects.all.deadLetters],
    maxAgeSeconds: 90 * DAY,
    maxBytes: 1 * GIB,
    // A dead letter keeps the original payload as base64 inside its own envelope.
    maxMsgSize: 2 * MIB,
  },
  {
    ...STREAM_DEFAULTS,
    name: STREAMS.auditIn,
    description:
      'One ordered input for the audit writer, sourced from every stream that is audited',
    subjects: [],
    sources: [STREAMS.commands, STREAMS.operations, STREAMS.events, STREAMS.deadLetters],
    maxAgeSeconds: 30 * DAY,
    maxBytes: 4 * GIB,
    maxMsgSize: 2 * MIB,
  },
  {
    ...STREAM_DEFAULTS,
    name: STREAMS.audit,
    description: 'The hash-chained audit records, written only by the fenced audit writer',
    subjects: [subjects.all.audit],
    maxAgeSeconds: 400 * DAY,
    maxBytes: 16 * GIB,
    maxMsgSize: 4 * MIB,
  },
  {
    ...STREAM_DEFAULTS,
    name: STREAMS.advisories,
    description: 'Max-deliveries advisories, kept so a consumer that was down still dead-letters',
    subjects: [subjects.all.maxDeliveriesAdvisories],
    maxAgeSeconds: 14 * DAY,
    maxBytes: 256 * MIB,
    // The server publishes advisories; it does not send message ids to de-duplicate.
    duplicateWindowSeconds: 120,
  },
];

/** Consumer settings shared by the services that decide or act. */
const WORKER_DEFAULTS = {
  ackWaitSeconds: 30,
  maxDeliver: 5,
  backoffSeconds: [],
  maxAckPending: 64,
  deliverPolicy: 'all',
} as const satisfies Partial<ConsumerSpec>;

/**
 * Consumer settings for services that must keep every message: redelivery is unlimited, so a
 * sink that is down for hours retries instead of dead-lettering audit records.
 */
const KEEP_ALL_DEFAULTS = {
  ackWaitSeconds: 60,
  maxDeliver: -1,
  backoffSeconds: [],
  deliverPolicy: 'all',
} as const satisfies Partial<ConsumerSpec>;

const workConsumers: ConsumerSpec[] = [
  {
    ...WORKER_DEFAULTS,
    stream: STREAMS.commands,
    durable: DURABLES.policyCommands,
    description: 'policy: validates and decides every command',
    filterSubjects: [subjects.all.commands],
    users: ['policy'],
  },
  {
    ...WORKER_DEFAULTS,
    stream: STREAMS.events,
    durable: DURABLES.policyProjection,
    description: 'policy: applies outcome events to the key inventory in per-key order',
    filterSubjects: [subjects.all.keyEvents, subjects.all.operationFailures],
    // A gap in a key's sequence is waited out with delayed naks, so allow many deliveries.
    maxDeliver: 60,
    users: ['policy'],
  },
  {
    ...WORKER_DEFAULTS,
    stream: STREAMS.deadLetters,
    durable: DURABLES.policyDeadLetters,
    description: 'policy: marks dead-lettered commands and operations as finished',
    filterSubjects: [subjects.all.deadLetters],
    maxDeliver: 10,
    users: ['policy'],
  },
  ...PROVIDERS.map((provider): ConsumerSpec => ({
    ...WORKER_DEFAULTS,
    stream: STREAMS.operations,
    durable: DURABLES.connector(provider),
    description: `connector-${provider}: performs admitted operations on the provider`,
    filterSubjects: [subjects.all.providerOperations(provider)],
    users: [`connector-${provider}`],
  })),
];

const keepAllConsumers: ConsumerSpec[] = [
  {
    ...KEEP_ALL_DEFAULTS,
    stream: STREAMS.auditIn,
    durable: DURABLES.auditWriter,
    description: 'audit: appends one chained record per source message, in stream order',
    filterSubjects: [],
    // One message in flight keeps the chain in source order across redeliveries.
    maxAckPending: 1,
    users: ['audit'],
  },
  {
    ...KEEP_ALL_DEFAULTS,
    stream: STREAMS.audit,
    durable: DURABLES.sinkClickhouse,
    description: 'sink-clickhouse: inserts audit records in batches',
    filterSubjects: [subjects.auditRecord],
    maxAckPending: 2000,
    users: ['sink-clickhouse'],
  },
  {
    ...KEEP_ALL_DEFAULTS,
    stream: STREAMS.audit,
    durable: DURABLES.sinkKafka,
    description: 'sink-kafka: sends audit records to the SIEM topic, serialised',
    filterSubjects: [subjects.auditRecord],
    maxAckPending: 500,
    users: ['sink-kafka'],
  },
];

/** Each durable with a delivery limit gets a consumer of its own max-deliveries advisories. */
const advisoryConsumers: ConsumerSpec[] = workConsumers.map((consumer) => ({
  ...WORKER_DEFAULTS,
  stream: STREAMS.advisories,
  durable: DURABLES.advisories(consumer.durable),
  description: `dead-letters messages that exhausted ${consumer.durable} without a final answer`,
  filterSubjects: [subjects.maxDeliveriesAdvisory(consumer.stream, consumer.durable)],
  maxDeliver: 10,
  users: consumer.users,
}));

const BUCKET_DEFAULTS = {
  history: 5,
  maxBytes: 256 * MIB,
  ttlSeconds: 0,
  storage: 'file',
  replicas: 1,
} as const satisfies Partial<BucketSpec>;

const buckets: BucketSpec[] = [
  {
    ...BUCKET_DEFAULTS,
    bucket: BUCKETS.inventory,
    description: 'Key inventory projection, one entry per key',
  },
  {
    ...BUCKET_DEFAULTS,
    bucket: BUCKETS.commands,
    description: 'Command status, one entry per command id, kept beyond the duplicate window',
    ttlSeconds: 90 * DAY,
  },
  {
    ...BUCKET_DEFAULTS,
    bucket: BUCKETS.schedules,
    description: 'Rotation and destruction schedules',
  },
  { ...BUCKET_DEFAULTS, bucket: BUCKETS.incidents, description: 'Incidents and their timelines' },
  {
    ...BUCKET_DEFAULTS,
    bucket: BUCKETS.identities,
    description: 'Actor identities and public keys',
  },
  { ...BUCKET_DEFAULTS, bucket: BUCKETS.policy, description: 'Policy documents' },
  { ...BUCKET_DEFAULTS, bucket: BUCKETS.approvals, description: 'Pending and granted approvals' },
  {
    ...BUCKET_DEFAULTS,
    bucket: BUCKETS.capabilities,
    description: 'Capability descriptor of each connector',
  },
  {
    ...BUCKET_DEFAULTS,
    bucket: BUCKETS.auditHead,
    description: 'Audit chain head: last sequence, hash and source position',
  },
  {
    ...BUCKET_DEFAULTS,
    bucket: BUCKETS.leases,
    description: 'Leases of single-instance services',
    history: 1,
  },
];

/** The whole topology keytower provisions. */
export const topology: Topology = {
  streams,
  consumers: [...workConsumers, ...keepAllConsumers, ...advisoryConsumers],
  buckets,
};

/** Looks up a stream by name; throws when the topology has none by that name. */
export function streamSpec(name: string): StreamSpec {
  const found = topology.streams.find((stream) => stream.name === name);
  if (!found) throw new Error(`stream "${name}" is not part of the keytower topology`);
  return found;
}

/** Looks up a durable consumer by name; throws when the topology has none by that name. */
export function consumerSpec(durable: string): ConsumerSpec {
  const found = topology.consumers.find((consumer) => consumer.durable === durable);
  if (!found) throw new Error(`durable consumer "${durable}" is not part of the keytower topology`);
  return found;
}

/** Looks up a KV bucket by name; throws when the topology has none by that name. */
export function bucketSpec(bucket: string): BucketSpec {
  const found = topology.buckets.find((spec) => spec.bucket === bucket);
  if (!found) throw new Error(`KV bucket "${bucket}" is not part of the keytower topology`);
  return found;
}
