import { runService } from '@keytower/bus';
import { publishCapabilities, startConnectorRuntime } from '@keytower/connector-runtime';
import { HSM_CAPABILITIES } from '@keytower/provider';

import { HsmKeyProvider } from './adapter.ts';
import { openPkcs11Client } from './client.ts';
import { hsmSettingsSchema } from './config.ts';

await runService({
  name: 'connector-hsm',
  configSchema: hsmSettingsSchema,
  async start({ config, logger, bus }) {
    const client = openPkcs11Client({
      modulePath: config.pkcs11Module,
      tokenLabel: config.pkcs11TokenLabel,
      pin: config.pkcs11Pin,
      poolSize: config.pkcs11SessionPoolSize,
      logger,
    });

    try {
      const provider = new HsmKeyProvider({ client });
      const revision = await publishCapabilities(bus, HSM_CAPABILITIES);
      logger.info({ revision }, 'capabilities published');

      if (config.crashPoint !== undefined && !config.testProfile) {
        logger.warn(
          { crashPoint: config.crashPoint },
          'crash point ignored: KEYTOWER_TEST_PROFILE is not true',
        );
      }
      const crashAfterProviderCall =
        config.testProfile && config.crashPoint === 'after-provider-call';

      const runtime = await startConnectorRuntime({
        bus,
        provider,
        logger,
        concurrency: config.connectorConcurrency,
        ...(crashAfterProviderCall
          ? {
              afterProviderCall: (operation) => {
                logger.warn(
                  { operationId: operation.operationId, keyId: operation.keyId },
                  'crash point after-provider-call: killing the process',
                );
                process.kill(process.pid, 'SIGKILL');
              },
            }
          : {}),
      });

      return {
        stop: async () => {
          await runtime.stop();
          await client.close();
        },
        ready: () => runtime.circuitBreaker.state !== 'open',
      };
    } catch (error) {
      await client.close();
      throw error;
    }
  },
});
