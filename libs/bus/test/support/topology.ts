import { randomBytes } from 'node:crypto';
import { DURABLES, STREAMS, streamSpec, subjects } from '@keytower/contracts';
import type { ConsumerSpec, StreamSpec, Topology } from '@keytower/contracts';
import type { Bus } from '../../src/index.ts';

/** Returns a unique prefix for the streams, durables and buckets of one test. */
export function uniquePrefix(label: string): string {
  return `T${Date.now().toString(36)}${randomBytes(3).toString('hex')}_${label}`.toUpperCase();
}

export interface WorkTopology {
  topology: Topology;
  stream: string;
  durable: string;
  subjectPrefix: string;
  /** Subject for message `n` of this test. */
  subject(n: number | string): string;
  /** Deletes the test's own stream and advisory consumer; the shared streams stay. */
  cleanup(bus: Bus): Promise<void>;
}

/**
 * Builds a topology with a test's own work stream, durable and advisory consumer. It also
 * lists the shared `KMS_DLQ` and `KMS_ADVISORIES` streams exactly as the contracts define
 * them, so applying it next to the test stack changes nothing there.
 */
export function workTopology(
  label: string,
  consumer: Partial<
    Pick<ConsumerSpec, 'ackWaitSeconds' | 'maxDeliver' | 'backoffSeconds' | 'maxAckPending'>
  > = {},
): WorkTopology {
  const prefix = uniquePrefix(label);
  const stream = `${prefix}_WORK`;
  const durable = `${prefix.toLowerCase().replace(/_/g, '-')}-worker`;
  const subjectPrefix = `test.${prefix.toLowerCase()}`;

  const work: StreamSpec = {
    name: stream,
    description: `bus test stream ${label}`,
    subjects: [`${subjectPrefix}.>`],
    sources: [],
    retention: 'limits',
    discard: 'new',
    storage: 'file',
    replicas: 1,
    maxAgeSeconds: 3600,
    maxBytes: 64 * 1024 * 1024,
    maxMsgs: -1,
    maxMsgSize: 1024 * 1024,
    duplicateWindowSeconds: 120,
    denyDelete: false,
    denyPurge: false,
    allowDirect: true,
  };
  const worker: ConsumerSpec = {
    stream,
    durable,
    description: `bus test durable ${label}`,
    filterSubjects: [`${subjectPrefix}.>`],
    ackWaitSeconds: consumer.ackWaitSeconds ?? 2,
    maxDeliver: consumer.maxDeliver ?? 3,
    backoffSeconds: consumer.backoffSeconds ?? [],
    maxAckPending: consumer.maxAckPending ?? 16,
    deliverPolicy: 'all',
    users: ['admin'],
  };
  const advisories: ConsumerSpec = {
    stream: STREAMS.advisories,
    durable: DURABLES.advisories(durable),
    description: `bus test advisories ${label}`,
    filterSubjects: [subjects.maxDeliveriesAdvisory(stream, durable)],
    ackWaitSeconds: 5,
    maxDeliver: 10,
    backoffSeconds: [],
    maxAckPending: 16,
    deliverPolicy: 'all',
    users: ['admin'],
  };

  return {
    topology: {
      streams: [streamSpec(STREAMS.deadLetters), streamSpec(STREAMS.advisories), work],
      consumers: [worker, advisories],
      buckets: [],
    },
    stream,
    durable,
    subjectPrefix,
    subject: (n) => `${subjectPrefix}.${n}`,
    async cleanup(bus) {
      await bus.manager.consumers.delete(STREAMS.advisories, advisories.durable).catch(() => false);
      await bus.manager.streams.delete(stream).catch(() => false);
    },
  };
}
