import { hostname } from 'node:os';

import { runService } from '@keytower/bus';
import { commonSettingsSchema } from '@keytower/config';
import { z } from 'zod';

import { runAuditWriter } from './writer.ts';

const settingsSchema = commonSettingsSchema.extend({
  /** Lease length of the single active writer, in seconds. */
  auditLeaseTtlSeconds: z.number().int().min(1).default(10),
  /** Delay between attempts of a standby writer to take the lease, in milliseconds. */
  auditStandbyPollMs: z.number().int().min(50).default(1000),
  /**
   * Test-only crash point. `before-append` freezes the process with SIGSTOP right before
   * each append once the lease check passed, so a fault test can resume it after another
   * writer took over.
   */
  crashPoint: z.enum(['before-append']).optional(),
});

await runService({
  name: 'audit',
  configSchema: settingsSchema,
  async start({ config, bus, logger }) {
    const stopping = new AbortController();
    let appends = 0;
    const running = runAuditWriter({
      bus,
      holder: `${hostname()}-${process.pid}`,
      leaseTtlSeconds: config.auditLeaseTtlSeconds,
      standbyPollMs: config.auditStandbyPollMs,
      logger,
      signal: stopping.signal,
      ...(config.crashPoint === 'before-append'
        ? {
            beforeAppend: (record) => {
              appends += 1;
              logger.warn(
                { recordId: record.recordId, appends },
                'crash point before-append: freezing the process',
              );
              process.kill(process.pid, 'SIGSTOP');
            },
          }
        : {}),
    });
    return {
      async stop() {
        stopping.abort();
        await running;
      },
    };
  },
});
