import { commonSettingsSchema, loadConfig } from '@keytower/config';
import type { CommonSettings, SettingsSchema } from '@keytower/config';
import { createLogger, startHealthServer, startTelemetry } from '@keytower/telemetry';
import type { HealthServer, Logger, Telemetry } from '@keytower/telemetry';
import type { z } from 'zod';
import { connectBus } from './connection.ts';
import type { Bus } from './connection.ts';

/** Context passed to a service's `start`. */
export interface ServiceContext<Config> {
  name: string;
  config: Config;
  logger: Logger;
  bus: Bus;
}

/** Handle returned by a service's `start`. */
export interface StartedService {
  /** Stops consumers and timers; the runner drains the connection afterwards. */
  stop(): Promise<void>;
  /** Readiness check reported on `/readyz` as `service`; ready when omitted. */
  ready?(): boolean | Promise<boolean>;
}

export interface ServiceDefinition<S extends SettingsSchema> {
  name: string;
  /** The service's settings: `commonSettingsSchema.extend({ … })`. */
  configSchema: S;
  start(context: ServiceContext<z.output<S>>): Promise<StartedService>;
  /** Environment to read settings from; defaults to `process.env`. */
  env?: Record<string, string | undefined>;
  /** Whether SIGTERM and SIGINT stop the service and exit the process; defaults to true. */
  handleSignals?: boolean;
}

/** A service started by {@link runService}. */
export interface RunningService<Config> {
  context: ServiceContext<Config>;
  health: HealthServer | undefined;
  /** Stops the service, drains the bus and closes health and telemetry; safe to call twice. */
  shutdown(): Promise<void>;
}

/**
 * Runs one service: loads and validates its settings, creates the logger, starts
 * telemetry and the health server, connects to NATS with the service's own credentials
 * and calls `start`. On SIGTERM or SIGINT it stops the service (consumers stop pulling and
 * finish or nak in-flight messages), drains the connection and exits 0; a failed shutdown
 * exits 1. A settings error is raised before anything connects.
 */
export async function runService<S extends SettingsSchema>(
  definition: ServiceDefinition<S>,
): Promise<RunningService<z.output<S>>> {
  const { name } = definition;
  for (const key of Object.keys(commonSettingsSchema.shape)) {
    if (!(key in definition.configSchema.shape)) {
      throw new Error(
        `runService(${name}): the settings schema lacks "${key}"; build it with commonSettingsSchema.extend()`,
      );
    }
  }

  const config = loadConfig(definition.configSchema, {
    service: name,
    ...(definition.env === undefined ? {} : { env: definition.env }),
  });
  const common = config as unknown as CommonSettings;
  const logger = createLogger({ service: name, level: common.logLevel });
  logger.info({ pid: process.pid }, 'service starting');

  let telemetry: Telemetry | undefined;
  let bus: Bus | undefined;
  let health: HealthServer | undefined;
  let started: StartedService | undefined;
  try {
    telemetry = startTelemetry({
      service: name,
      ...(common.otlpEndpoint === undefined ? {} : { otlpEndpoint: common.otlpEndpoint }),
    });
    bus = await connectBus({
      servers: common.natsUrl,
      user: common.natsUser,
      password: common.natsPassword,
      name,
      logger,
    });
    const connectedBus = bus;
    const context: ServiceContext<z.output<S>> = { name, config, logger, bus: connectedBus };
    started = await definition.start(context);
    const service = started;

    if (common.healthPort !== undefined) {
      health = await startHealthServer({
        port: common.healthPort,
        checks: {
          nats: () => connectedBus.isConnected(),
          service: () => (service.ready === undefined ? true : service.ready()),
        },
      });
      logger.info({ port: health.port }, 'health endpoints listening');
    }
  } catch (error) {
    logger.error({ err: error }, 'service failed to start');
    await started?.stop().catch(() => undefined);
    await bus?.close().catch(() => undefined);
    await telemetry?.shutdown().catch(() => undefined);
    throw error;
  }

  const service = started;
  const connectedBus = bus;
  const openedTelemetry = telemetry;
  const openedHealth = health;
  let shuttingDown: Promise<void> | undefined;

  async function stopEverything(): Promise<void> {
    logger.info('service stopping');
    const failures: unknown[] = [];
    for (const step of [
      () => service.stop(),
      () => connectedBus.close(),
      () => openedHealth?.close(),
      () => openedTelemetry.shutdown(),
    ]) {
      try {
        await step();
      } catch (error) {
        failures.push(error);
        logger.error({ err: error }, 'shutdown step failed');
      }
    }
    if (failures.length > 0) {
      throw new AggregateError(failures, `service ${name} did not shut down cleanly`);
    }
    logger.info('service stopped');
  }

  function shutdown(): Promise<void> {
    shuttingDown ??= stopEverything();
    return shuttingDown;
  }

  if (definition.handleSignals ?? true) {
    const onSignal = (signal: NodeJS.Signals) => {
      if (shuttingDown !== undefined) {
        logger.warn({ signal }, 'second signal during shutdown; exiting now');
        process.exit(1);
      }
      logger.info({ signal }, 'signal received');
      shutdown().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);

    // An error nothing caught leaves the service in an unknown state, so it is logged and
    // the process exits non-zero for its supervisor to restart it.
    const onFatal = (error: unknown, origin: string) => {
      logger.fatal({ err: error, origin }, 'uncaught error; exiting');
      process.exit(1);
    };
    process.on('uncaughtException', (error) => onFatal(error, 'uncaughtException'));
    process.on('unhandledRejection', (reason) => onFatal(reason, 'unhandledRejection'));
  }

  logger.info('service started');
  return { context: { name, config, logger, bus: connectedBus }, health: openedHealth, shutdown };
}
