/**
 * A minimal service started by `runService` in a child process. It consumes the durable
 * named by `KEYTOWER_TEST_STREAM` and `KEYTOWER_TEST_DURABLE`. Each handler takes
 * `KEYTOWER_TEST_HANDLER_MS` and logs `handler started` and `handler finished`.
 */
import { z } from 'zod';
import { commonSettingsSchema } from '@keytower/config';
import { runService } from '../../src/index.ts';

const settingsSchema = commonSettingsSchema.extend({
  testStream: z.string().min(1),
  testDurable: z.string().min(1),
  testHandlerMs: z.number().int().min(0),
});

await runService({
  name: 'bus-test-service',
  configSchema: settingsSchema,
  async start({ config, bus, logger }) {
    const consumer = await bus.consume({
      stream: config.testStream,
      durable: config.testDurable,
      logger,
      stopTimeoutMs: 5_000,
      handler: async (message) => {
        const id = message.json<{ id: string }>().id;
        logger.info({ messageId: id }, 'handler started');
        await new Promise((resolve) => setTimeout(resolve, config.testHandlerMs));
        logger.info({ messageId: id }, 'handler finished');
      },
    });
    return { stop: () => consumer.stop() };
  },
});
