/**
 * Reads the Kafka SIEM topic from the beginning, as a SOC's consumer would, and de-duplicates by
 * audit record id, because the Kafka sink delivers at least once.
 */
import { Kafka, logLevel } from 'kafkajs';
import type { StackDescriptor } from '@keytower/config';

/** Record ids read from the topic, and how many messages carried an id already seen. */
export interface SiemTopicRead {
  recordIds: Set<string>;
  /** Kafka timestamp (milliseconds since the epoch) of the first message that carried each record id. */
  firstTimestamps: Map<string, number>;
  messages: number;
  repeats: number;
}

let warningFilterInstalled = false;

/**
 * KafkaJS 2.2.4 schedules a negative timeout on Node 24, which prints a harmless
 * `TimeoutNegativeWarning` per client. This hides only that warning so the demo transcript stays
 * readable. Every other warning still reaches the listeners that were installed before.
 */
export function hideKafkaJsTimeoutWarning(): void {
  if (warningFilterInstalled) {
    return;
  }
  warningFilterInstalled = true;
  const listeners = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name === 'TimeoutNegativeWarning') {
      return;
    }
    for (const listener of listeners) {
      listener(warning);
    }
  });
}

/** Returns the audit record id a SIEM message carries: the record's own `recordId` field. */
export function recordIdOfSiemMessage(value: Buffer | null): string | undefined {
  if (value === null) {
    return undefined;
  }
  try {
    const record = JSON.parse(value.toString('utf8')) as { recordId?: unknown };
    return typeof record.recordId === 'string' ? record.recordId : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Consumes the SIEM topic from the beginning in a consumer group of its own until `isComplete`
 * returns true for the ids read so far, or `timeoutMs` passes. It leaves the group before it returns.
 */
export async function readSiemTopic(
  descriptor: StackDescriptor,
  options: {
    groupId: string;
    timeoutMs: number;
    isComplete: (recordIds: ReadonlySet<string>) => boolean;
  },
): Promise<SiemTopicRead> {
  hideKafkaJsTimeoutWarning();
  const kafka = new Kafka({
    clientId: options.groupId,
    brokers: descriptor.kafka.brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2000 },
  });
  const consumer = kafka.consumer({
    groupId: options.groupId,
    sessionTimeout: 10_000,
    heartbeatInterval: 1000,
  });
  const read: SiemTopicRead = {
    recordIds: new Set(),
    firstTimestamps: new Map(),
    messages: 0,
    repeats: 0,
  };

  await consumer.connect();
  try {
    await consumer.subscribe({ topic: descriptor.kafka.topic, fromBeginning: true });
    let finish: () => void = () => undefined;
    const complete = new Promise<void>((resolve) => {
      finish = resolve;
    });

    await consumer.run({
      eachMessage: async ({ message }) => {
        read.messages += 1;
        const recordId = recordIdOfSiemMessage(message.value);
        if (recordId === undefined) {
          return;
        }
        if (read.recordIds.has(recordId)) {
          read.repeats += 1;
        } else {
          read.recordIds.add(recordId);
          read.firstTimestamps.set(recordId, Number(message.timestamp));
        }
        if (options.isComplete(read.recordIds)) {
          finish();
        }
      },
    });
    if (options.isComplete(read.recordIds)) {
      finish();
    }

    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, options.timeoutMs);
    });
    await Promise.race([complete, timedOut]);
    clearTimeout(timer);
  } finally {
    await consumer.disconnect();
  }
  return read;
}
