import { BUCKETS, DURABLES, STREAMS } from '@keytower/contracts';
import { type RunningConsumer, runService } from '@keytower/bus';
import { formatAllowList, parseAllowList } from './authorize.ts';
import { createCommandHandler } from './commands.ts';
import { policySettingsSchema } from './config.ts';
import { createDeadLetterHandler } from './dead-letters.ts';
import { createProjectionHandler } from './projection.ts';

/** Delay before an event that skipped ahead of its key's sequence is delivered again. */
const PROJECTION_GAP_RETRY_MS = 1_000;

await runService({
  name: 'policy',
  configSchema: policySettingsSchema,
  async start({ config, logger, bus }) {
    const allowList = parseAllowList(config.policyAllow);
    if (allowList.size === 0) {
      logger.warn(
        'the policy allow-list is empty: every command will be rejected as not-authorized; set KEYTOWER_POLICY_ALLOW',
      );
    } else {
      logger.info({ allowList: formatAllowList(allowList) }, 'policy allow-list loaded');
    }
    if (config.testProfile) {
      logger.warn('test profile: pending windows down to 1 second are accepted');
    }

    const inventory = await bus.kv(BUCKETS.inventory);
    const statuses = await bus.kv(BUCKETS.commands);
    const capabilities = await bus.kv(BUCKETS.capabilities);
    const clock = () => new Date();
    const consumers: RunningConsumer[] = [];

    consumers.push(
      await bus.consume({
        stream: STREAMS.commands,
        durable: DURABLES.policyCommands,
        concurrency: config.policyCommandConcurrency,
        logger,
        handler: createCommandHandler({
          bus,
          inventory,
          statuses,
          capabilities,
          allowList,
          settings: { testProfile: config.testProfile },
          clock,
          logger,
          ...(config.crashPoint === 'after-admission'
            ? {
                afterAdmission: (command) => {
                  logger.warn(
                    { commandId: command.id },
                    'crash point after-admission: killing the process',
                  );
                  process.kill(process.pid, 'SIGKILL');
                },
              }
            : {}),
        }),
      }),
    );
    consumers.push(
      await bus.consume({
        stream: STREAMS.events,
        durable: DURABLES.policyProjection,
        logger,
        handler: createProjectionHandler({
          inventory,
          statuses,
          clock,
          logger,
          gapRetryMs: PROJECTION_GAP_RETRY_MS,
        }),
      }),
    );
    consumers.push(
      await bus.consume({
        stream: STREAMS.deadLetters,
        durable: DURABLES.policyDeadLetters,
        logger,
        handler: createDeadLetterHandler({ inventory, statuses, clock, logger }),
      }),
    );
    logger.info('policy consuming commands, events and dead letters');

    return {
      async stop() {
        await Promise.all(consumers.map((consumer) => consumer.stop()));
      },
    };
  },
});
