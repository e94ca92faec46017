/**
 * The raw JetStream ceiling: how many messages per second one publisher and one consumer move
 * through a file-backed stream on the same NATS server, with no keytower code in the path. Each
 * publish carries a `Nats-Msg-Id` and waits for its acknowledgement (with a bounded window in
 * flight), and the consumer acks each message explicitly, as keytower's audit writer and sinks do.
 */
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { PubAck } from '@nats-io/jetstream';
import type { Bus } from '@keytower/bus';

/** Result of one run of the raw publish-and-consume loop. */
export interface JetStreamCeilingResult {
  messages: number;
  messageBytes: number;
  elapsedMs: number;
  /** Publish and consume run at the same time; this is messages over the time until the last ack. */
  messagesPerSecond: number;
  publishOnlyMs: number;
}

const PUBLISH_WINDOW = 64;

/**
 * Publishes `messages` messages of `messageBytes` bytes to a stream of its own and consumes them at
 * the same time. The stream is created for the run and deleted afterwards, so `bus` must be the
 * admin connection.
 */
export async function runJetStreamCeiling(
  bus: Bus,
  options: { messages: number; messageBytes: number; runId: string },
): Promise<JetStreamCeilingResult> {
  const stream = `BENCH_RAW_${options.runId.toUpperCase()}`;
  const subject = `bench.raw.${options.runId}`;
  await bus.manager.streams.add({
    name: stream,
    subjects: [subject],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    num_replicas: 1,
    duplicate_window: 120 * 1_000_000_000,
  });

  try {
    await bus.manager.consumers.add(stream, {
      durable_name: 'bench',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      max_ack_pending: 1000,
    });
    const consumer = await bus.jetstream.consumers.get(stream, 'bench');
    const payload = new Uint8Array(options.messageBytes).fill(0x61);

    const started = performance.now();
    const consumed = (async () => {
      let count = 0;
      const messages = await consumer.consume({ max_messages: 500 });
      for await (const message of messages) {
        message.ack();
        count += 1;
        if (count === options.messages) {
          break;
        }
      }
      return performance.now();
    })();

    const inFlight = new Set<Promise<PubAck>>();
    for (let index = 0; index < options.messages; index += 1) {
      const ack = bus.jetstream.publish(subject, payload, { msgID: `${options.runId}-${index}` });
      inFlight.add(ack);
      const settle = (): boolean => inFlight.delete(ack);
      ack.then(settle, settle);
      if (inFlight.size >= PUBLISH_WINDOW) {
        await Promise.race(inFlight);
      }
    }
    await Promise.all(inFlight);
    const publishedAt = performance.now();
    const finishedAt = await consumed;
    const elapsedMs = finishedAt - started;

    return {
      messages: options.messages,
      messageBytes: options.messageBytes,
      elapsedMs,
      messagesPerSecond: (options.messages * 1000) / elapsedMs,
      publishOnlyMs: publishedAt - started,
    };
  } finally {
    await bus.manager.streams.delete(stream);
  }
}
