import { hostname } from 'node:os';

import { runService } from '@keytower/bus';
import { commonSettingsSchema } from '@keytower/config';
import { z } from 'zod';

import { runClickHouseSink } from './sink.ts';
import { ClickHouseAuditStore } from './store.ts';

const settingsSchema = commonSettingsSchema.extend({
  clickhouseUrl: z.url(),
  clickhouseDatabase: z.string().min(1).default('keytower'),
  clickhouseUser: z.string().min(1).default('default'),
  clickhousePassword: z.string().default(''),
  /** Time limit of one ClickHouse request, in milliseconds. */
  clickhouseRequestTimeoutMs: z.number().int().min(100).default(10_000),
  /** Records per insert at most. */
  sinkBatchMaxRecords: z.number().int().min(1).max(2000).default(500),
  /** Maximum wait for a batch to fill, in milliseconds. */
  sinkBatchMaxWaitMs: z.number().int().min(1).default(1000),
  /** First and maximum delay between insert retries, in milliseconds. */
  sinkRetryInitialDelayMs: z.number().int().min(1).default(500),
  sinkRetryMaxDelayMs: z.number().int().min(1).default(30_000),
  /** Lease length of the single active instance, in seconds. */
  sinkLeaseTtlSeconds: z.number().int().min(1).default(10),
  /** Delay between attempts of a standby instance to take the lease, in milliseconds. */
  sinkStandbyPollMs: z.number().int().min(50).default(1000),
});

await runService({
  name: 'sink-clickhouse',
  configSchema: settingsSchema,
  async start({ config, bus, logger }) {
    const store = new ClickHouseAuditStore({
      url: config.clickhouseUrl,
      database: config.clickhouseDatabase,
      username: config.clickhouseUser,
      password: config.clickhousePassword,
      requestTimeoutMs: config.clickhouseRequestTimeoutMs,
    });
    const stopping = new AbortController();
    const running = runClickHouseSink({
      bus,
      store,
      holder: `${hostname()}-${process.pid}`,
      leaseTtlSeconds: config.sinkLeaseTtlSeconds,
      standbyPollMs: config.sinkStandbyPollMs,
      batchMaxRecords: config.sinkBatchMaxRecords,
      batchMaxWaitMs: config.sinkBatchMaxWaitMs,
      retryInitialDelayMs: config.sinkRetryInitialDelayMs,
      retryMaxDelayMs: config.sinkRetryMaxDelayMs,
      logger,
      signal: stopping.signal,
    });
    return {
      async stop() {
        stopping.abort();
        await running;
        await store.close();
      },
    };
  },
});
