import { hostname } from 'node:os';

import { runService } from '@keytower/bus';
import { commonSettingsSchema } from '@keytower/config';
import { z } from 'zod';

import { SiemProducer } from './producer.ts';
import { runKafkaSink } from './sink.ts';

const settingsSchema = commonSettingsSchema.extend({
  /** Kafka bootstrap brokers, comma-separated `host:port`. */
  kafkaBrokers: z.string().min(1),
  kafkaTopic: z.string().min(1).default('keytower.audit.v1'),
  /** Time limit of one Kafka request, in milliseconds; a hung broker fails a send after about three of these. */
  kafkaRequestTimeoutMs: z.number().int().min(100).default(5000),
  kafkaConnectionTimeoutMs: z.number().int().min(100).default(3000),
  /** First and maximum delay between send retries, in milliseconds. */
  sinkRetryInitialDelayMs: z.number().int().min(1).default(500),
  sinkRetryMaxDelayMs: z.number().int().min(1).default(30_000),
  /** Lease length of the single active instance, in seconds. */
  sinkLeaseTtlSeconds: z.number().int().min(1).default(10),
  /** Delay between attempts of a standby instance to take the lease, in milliseconds. */
  sinkStandbyPollMs: z.number().int().min(50).default(1000),
});

await runService({
  name: 'sink-kafka',
  configSchema: settingsSchema,
  async start({ config, bus, logger }) {
    const producer = new SiemProducer({
      brokers: config.kafkaBrokers.split(',').map((broker) => broker.trim()),
      topic: config.kafkaTopic,
      clientId: 'keytower-sink-kafka',
      requestTimeoutMs: config.kafkaRequestTimeoutMs,
      connectionTimeoutMs: config.kafkaConnectionTimeoutMs,
      logger,
    });
    const stopping = new AbortController();
    const running = runKafkaSink({
      bus,
      producer,
      holder: `${hostname()}-${process.pid}`,
      leaseTtlSeconds: config.sinkLeaseTtlSeconds,
      standbyPollMs: config.sinkStandbyPollMs,
      retryInitialDelayMs: config.sinkRetryInitialDelayMs,
      retryMaxDelayMs: config.sinkRetryMaxDelayMs,
      logger,
      signal: stopping.signal,
    });
    return {
      async stop() {
        stopping.abort();
        await running;
        await producer.close();
      },
    };
  },
});
