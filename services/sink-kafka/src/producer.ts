import { Kafka, Partitioners, logLevel, type Producer } from 'kafkajs';
import { AUDIT_SCHEMA_VERSION, type AuditRecord } from '@keytower/audit-chain';
import type { Logger } from '@keytower/telemetry';

/** Header carrying the audit record layout version. */
export const SCHEMA_VERSION_HEADER = 'keytower-schema-version';
/** Header carrying the record id; SIEM consumers de-duplicate by it. */
export const RECORD_ID_HEADER = 'keytower-record-id';

/** Connection settings of {@link SiemProducer}. */
export interface SiemProducerOptions {
  brokers: string[];
  topic: string;
  clientId: string;
  /**
   * Time limit of one Kafka request, in milliseconds. It is enforced on the client, so a
   * broker that stops responding without closing the connection surfaces as a timeout.
   */
  requestTimeoutMs: number;
  connectionTimeoutMs: number;
  logger: Logger;
}

/**
 * Sends audit records to the SIEM topic with an idempotent producer and `acks=all`, one
 * send at a time.
 *
 * Sends are serialised because KafkaJS 2.2.4 has reports of concurrent `send()` calls on
 * an idempotent producer losing messages.
 *
 * After any failed send the producer is discarded, so the next send uses a new producer id.
 * The reason: KafkaJS reuses the sequence number of a timed-out batch for the next batch.
 * If the broker appended the timed-out batch late, it then acknowledges the next batch as
 * a duplicate without storing it (reproduced in `tests/e2e/sink-kafka-client.test.ts`).
 * The record that failed is sent again, so it may appear twice on the topic. SIEM consumers
 * de-duplicate by the record id header.
 */
export class SiemProducer {
  readonly #options: SiemProducerOptions;
  readonly #kafka: Kafka;
  #producer: Producer | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(options: SiemProducerOptions) {
    this.#options = options;
    this.#kafka = new Kafka({
      clientId: options.clientId,
      brokers: options.brokers,
      connectionTimeout: options.connectionTimeoutMs,
      requestTimeout: options.requestTimeoutMs,
      enforceRequestTimeout: true,
      // Retries inside KafkaJS stay few, so a hung broker fails a send in a bounded time
      // and the sink's own retry loop, which logs each attempt, takes over.
      retry: { retries: 2, initialRetryTime: 300, maxRetryTime: 3000 },
      logLevel: logLevel.NOTHING,
    });
  }

  /** Sends one record and resolves once every in-sync replica has it (acks=all). */
  send(record: AuditRecord): Promise<void> {
    const sent = this.#queue.then(() => this.#sendNow(record));
    this.#queue = sent.catch(() => undefined);
    return sent;
  }

  /** Disconnects the current producer, if any. */
  async close(): Promise<void> {
    await this.#queue;
    await this.#discard();
  }

  async #sendNow(record: AuditRecord): Promise<void> {
    try {
      const producer = await this.#connected();
      await producer.send({
        topic: this.#options.topic,
        acks: -1,
        messages: [
          {
            key: record.keyId,
            value: JSON.stringify(record),
            headers: {
              [SCHEMA_VERSION_HEADER]: String(AUDIT_SCHEMA_VERSION),
              [RECORD_ID_HEADER]: record.recordId,
              'content-type': 'application/json',
            },
          },
        ],
      });
    } catch (error) {
      await this.#discard();
      throw error;
    }
  }

  async #connected(): Promise<Producer> {
    if (this.#producer === undefined) {
      const producer = this.#kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      this.#producer = producer;
      await producer.connect();
    }
    return this.#producer;
  }

  async #discard(): Promise<void> {
    const producer = this.#producer;
    this.#producer = undefined;
    if (producer === undefined) {
      return;
    }
    // Disconnecting from a hung broker can itself hang, so it is bounded.
    await Promise.race([
      producer.disconnect(),
      new Promise((resolve) => setTimeout(resolve, this.#options.requestTimeoutMs).unref()),
    ]).catch((error: unknown) =>
      this.#options.logger.debug({ err: error }, 'kafka producer disconnect failed'),
    );
  }
}
