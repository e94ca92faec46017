import type { NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, ReplayPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type {
  ConsumerConfig,
  JetStreamManager,
  StreamConfig,
  StreamInfo,
} from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { BucketSpec, ConsumerSpec, StreamSpec, Topology } from '@keytower/contracts';
import type { Logger } from '@keytower/telemetry';
import { ProvisionConflictError, isNotFound } from './errors.ts';

export interface ProvisionOptions {
  logger: Logger;
}

/** Result of one provisioning run, listed by resource (`stream KMS_EVENTS`, `bucket kms_leases` …). */
export interface ProvisionReport {
  created: string[];
  updated: string[];
  unchanged: string[];
  /** Whether anything was created or updated. */
  changed: boolean;
}

const NANOS_PER_SECOND = 1_000_000_000;

/** One setting compared between the server's config and the spec, in the spec's units. */
interface SettingCheck {
  setting: string;
  current: unknown;
  wanted: unknown;
  /** Whether JetStream can change the setting on an existing stream or consumer. */
  updatable: boolean;
}

function seconds(nanos: number | undefined): number {
  return (nanos ?? 0) / NANOS_PER_SECOND;
}

function sorted(values: string[] | undefined): string[] {
  return [...(values ?? [])].sort();
}

function differs(check: SettingCheck): boolean {
  return JSON.stringify(check.current) !== JSON.stringify(check.wanted);
}

/**
 * Returns the changed settings, or raises {@link ProvisionConflictError} for the first one
 * JetStream cannot change in place.
 */
function changedSettings(resource: string, checks: SettingCheck[]): SettingCheck[] {
  const changed = checks.filter(differs);
  const fixed = changed.find((check) => !check.updatable);
  if (fixed !== undefined) {
    throw new ProvisionConflictError({ resource, ...fixed });
  }
  return changed;
}

function streamConfig(spec: StreamSpec): Partial<StreamConfig> & { name: string } {
  return {
    name: spec.name,
    description: spec.description,
    ...(spec.subjects.length > 0 ? { subjects: spec.subjects } : {}),
    ...(spec.sources.length > 0 ? { sources: spec.sources.map((name) => ({ name })) } : {}),
    retention: spec.retention as StreamConfig['retention'],
    discard: spec.discard as StreamConfig['discard'],
    storage: spec.storage as StreamConfig['storage'],
    num_replicas: spec.replicas,
    max_age: spec.maxAgeSeconds * NANOS_PER_SECOND,
    max_bytes: spec.maxBytes,
    max_msgs: spec.maxMsgs,
    max_msg_size: spec.maxMsgSize,
    duplicate_window: spec.duplicateWindowSeconds * NANOS_PER_SECOND,
    deny_delete: spec.denyDelete,
    deny_purge: spec.denyPurge,
    allow_direct: spec.allowDirect,
  };
}

function streamChecks(current: StreamConfig, spec: StreamSpec): SettingCheck[] {
  return [
    { setting: 'storage', current: current.storage, wanted: spec.storage, updatable: false },
    { setting: 'retention', current: current.retention, wanted: spec.retention, updatable: false },
    {
      setting: 'description',
      current: current.description ?? '',
      wanted: spec.description,
      updatable: true,
    },
    {
      setting: 'subjects',
      current: sorted(current.subjects),
      wanted: sorted(spec.subjects),
      updatable: true,
    },
    {
      setting: 'sources',
      current: sorted(current.sources?.map((source) => source.name)),
      wanted: sorted(spec.sources),
      updatable: true,
    },
    { setting: 'discard', current: current.discard, wanted: spec.discard, updatable: true },
    { setting: 'replicas', current: current.num_replicas, wanted: spec.replicas, updatable: true },
    {
      setting: 'maxAgeSeconds',
      current: seconds(current.max_age),
      wanted: spec.maxAgeSeconds,
      updatable: true,
    },
    { setting: 'maxBytes', current: current.max_bytes, wanted: spec.maxBytes, updatable: true },
    { setting: 'maxMsgs', current: current.max_msgs, wanted: spec.maxMsgs, updatable: true },
    {
      setting: 'maxMsgSize',
      current: current.max_msg_size,
      wanted: spec.maxMsgSize,
      updatable: true,
    },
    {
      setting: 'duplicateWindowSeconds',
      current: seconds(current.duplicate_window),
      wanted: spec.duplicateWindowSeconds,
      updatable: true,
    },
    // JetStream refuses to clear deny_delete or deny_purge once set, but allows setting them.
    {
      setting: 'denyDelete',
      current: current.deny_delete ?? false,
      wanted: spec.denyDelete,
      updatable: spec.denyDelete || !(current.deny_delete ?? false),
    },
    {
      setting: 'denyPurge',
      current: current.deny_purge ?? false,
      wanted: spec.denyPurge,
      updatable: spec.denyPurge || !(current.deny_purge ?? false),
    },
    {
      setting: 'allowDirect',
      current: current.allow_direct ?? false,
      wanted: spec.allowDirect,
      updatable: true,
    },
  ];
}

function consumerConfig(spec: ConsumerSpec): Partial<ConsumerConfig> {
  return {
    durable_name: spec.durable,
    description: spec.description,
    ack_policy: AckPolicy.Explicit,
    ack_wait: spec.ackWaitSeconds * NANOS_PER_SECOND,
    max_deliver: spec.maxDeliver,
    ...(spec.backoffSeconds.length > 0
      ? { backoff: spec.backoffSeconds.map((value) => value * NANOS_PER_SECOND) }
      : {}),
    max_ack_pending: spec.maxAckPending,
    deliver_policy: spec.deliverPolicy as ConsumerConfig['deliver_policy'],
    replay_policy: ReplayPolicy.Instant,
    ...(spec.filterSubjects.length > 0 ? { filter_subjects: spec.filterSubjects } : {}),
  };
}

function consumerChecks(current: ConsumerConfig, spec: ConsumerSpec): SettingCheck[] {
  const filters =
    current.filter_subjects ?? (current.filter_subject ? [current.filter_subject] : []);
  return [
    {
      setting: 'deliverPolicy',
      current: current.deliver_policy,
      wanted: spec.deliverPolicy,
      updatable: false,
    },
    {
      setting: 'ackPolicy',
      current: current.ack_policy,
      wanted: AckPolicy.Explicit,
      updatable: false,
    },
    {
      setting: 'description',
      current: current.description ?? '',
      wanted: spec.description,
      updatable: true,
    },
    {
      setting: 'filterSubjects',
      current: sorted(filters),
      wanted: sorted(spec.filterSubjects),
      updatable: true,
    },
    {
      setting: 'ackWaitSeconds',
      current: seconds(current.ack_wait),
      wanted: spec.ackWaitSeconds,
      updatable: true,
    },
    {
      setting: 'maxDeliver',
      current: current.max_deliver,
      wanted: spec.maxDeliver,
      updatable: true,
    },
    {
      setting: 'backoffSeconds',
      current: (current.backoff ?? []).map(seconds),
      wanted: spec.backoffSeconds,
      updatable: true,
    },
    {
      setting: 'maxAckPending',
      current: current.max_ack_pending,
      wanted: spec.maxAckPending,
      updatable: true,
    },
  ];
}

function bucketChecks(current: StreamConfig, spec: BucketSpec): SettingCheck[] {
  return [
    { setting: 'storage', current: current.storage, wanted: spec.storage, updatable: false },
    {
      setting: 'description',
      current: current.description ?? '',
      wanted: spec.description,
      updatable: true,
    },
    {
      setting: 'history',
      current: current.max_msgs_per_subject,
      wanted: spec.history,
      updatable: true,
    },
    { setting: 'maxBytes', current: current.max_bytes, wanted: spec.maxBytes, updatable: true },
    {
      setting: 'ttlSeconds',
      current: seconds(current.max_age),
      wanted: spec.ttlSeconds,
      updatable: true,
    },
    { setting: 'replicas', current: current.num_replicas, wanted: spec.replicas, updatable: true },
  ];
}

async function streamInfo(
  manager: JetStreamManager,
  name: string,
): Promise<StreamInfo | undefined> {
  try {
    return await manager.streams.info(name);
  } catch (error) {
    if (isNotFound(error)) {
      return undefined;
    }
    throw error;
  }
}

/** Raises a conflict carrying the server's reason when JetStream rejects an update. */
function rejectedUpdate(
  resource: string,
  changed: SettingCheck[],
  error: unknown,
): ProvisionConflictError {
  const first = changed[0] as SettingCheck;
  return new ProvisionConflictError(
    {
      resource,
      setting: changed.map((check) => check.setting).join(', '),
      current: first.current,
      wanted: first.wanted,
      detail: error instanceof Error ? error.message : String(error),
    },
    { cause: error },
  );
}

/** Streams that source others are created after them. */
function streamOrder(streams: StreamSpec[]): StreamSpec[] {
  return [
    ...streams.filter((spec) => spec.sources.length === 0),
    ...streams.filter((spec) => spec.sources.length > 0),
  ];
}

/**
 * Applies a topology: creates missing streams, durable consumers and KV buckets with every
 * setting the spec gives, and updates settings JetStream can change in place. A setting it
 * cannot change (storage, retention, deliver policy, clearing deny_delete or deny_purge)
 * raises {@link ProvisionConflictError} naming the resource, the setting, and the current
 * and wanted values, before anything of that resource is changed. A second run with the
 * same topology changes nothing and reports `changed: false`.
 *
 * Needs a connection whose user may administer JetStream (`admin`).
 */
export async function provision(
  connection: NatsConnection,
  topology: Topology,
  options: ProvisionOptions,
): Promise<ProvisionReport> {
  const { logger } = options;
  const manager = await jetstreamManager(connection);
  const kvm = new Kvm(jetstream(connection));
  const report: ProvisionReport = { created: [], updated: [], unchanged: [], changed: false };

  for (const spec of streamOrder(topology.streams)) {
    const resource = `stream ${spec.name}`;
    const info = await streamInfo(manager, spec.name);
    if (info === undefined) {
      await manager.streams.add(streamConfig(spec));
      report.created.push(resource);
      logger.info({ stream: spec.name }, 'stream created');
      continue;
    }

    const changed = changedSettings(resource, streamChecks(info.config, spec));
    if (changed.length === 0) {
      report.unchanged.push(resource);
      continue;
    }
    try {
      await manager.streams.update(spec.name, { ...info.config, ...streamConfig(spec) });
    } catch (error) {
      throw rejectedUpdate(resource, changed, error);
    }
    report.updated.push(resource);
    logger.info(
      { stream: spec.name, settings: changed.map((check) => check.setting) },
      'stream updated',
    );
  }

  for (const spec of topology.consumers) {
    const resource = `consumer ${spec.durable} on stream ${spec.stream}`;
    let current: ConsumerConfig | undefined;
    try {
      current = (await manager.consumers.info(spec.stream, spec.durable)).config;
    } catch (error) {
      if (!isNotFound(error)) {
        throw error;
      }
    }
    if (current === undefined) {
      await manager.consumers.add(spec.stream, consumerConfig(spec));
      report.created.push(resource);
      logger.info({ stream: spec.stream, durable: spec.durable }, 'consumer created');
      continue;
    }

    const changed = changedSettings(resource, consumerChecks(current, spec));
    if (changed.length === 0) {
      report.unchanged.push(resource);
      continue;
    }
    const wanted = consumerConfig(spec);
    try {
      await manager.consumers.update(spec.stream, spec.durable, {
        description: wanted.description,
        ack_wait: wanted.ack_wait,
        max_deliver: wanted.max_deliver,
        backoff: wanted.backoff ?? [],
        max_ack_pending: wanted.max_ack_pending,
        filter_subjects: wanted.filter_subjects ?? [],
      });
    } catch (error) {
      throw rejectedUpdate(resource, changed, error);
    }
    report.updated.push(resource);
    logger.info(
      {
        stream: spec.stream,
        durable: spec.durable,
        settings: changed.map((check) => check.setting),
      },
      'consumer updated',
    );
  }

  for (const spec of topology.buckets) {
    const resource = `bucket ${spec.bucket}`;
    const streamName = `KV_${spec.bucket}`;
    const info = await streamInfo(manager, streamName);
    if (info === undefined) {
      await kvm.create(spec.bucket, {
        description: spec.description,
        history: spec.history,
        max_bytes: spec.maxBytes,
        ttl: spec.ttlSeconds * 1_000,
        storage: spec.storage as StreamConfig['storage'],
        replicas: spec.replicas,
      });
      report.created.push(resource);
      logger.info({ bucket: spec.bucket }, 'bucket created');
      continue;
    }

    const changed = changedSettings(resource, bucketChecks(info.config, spec));
    if (changed.length === 0) {
      report.unchanged.push(resource);
      continue;
    }
    try {
      await manager.streams.update(streamName, {
        ...info.config,
        description: spec.description,
        max_msgs_per_subject: spec.history,
        max_bytes: spec.maxBytes,
        max_age: spec.ttlSeconds * NANOS_PER_SECOND,
        num_replicas: spec.replicas,
      });
    } catch (error) {
      throw rejectedUpdate(resource, changed, error);
    }
    report.updated.push(resource);
    logger.info(
      { bucket: spec.bucket, settings: changed.map((check) => check.setting) },
      'bucket updated',
    );
  }

  report.changed = report.created.length > 0 || report.updated.length > 0;
  if (report.changed) {
    logger.info(
      {
        created: report.created.length,
        updated: report.updated.length,
        unchanged: report.unchanged.length,
      },
      'topology provisioned',
    );
  } else {
    logger.info(
      { unchanged: report.unchanged.length },
      'topology already up to date; nothing changed',
    );
  }
  return report;
}
