import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { KV } from '@nats-io/kv';
import { inboxPrefix } from '@keytower/contracts';
import type { Logger } from '@keytower/telemetry';
import { consume } from './consumer.ts';
import type { ConsumeOptions, RunningConsumer } from './consumer.ts';
import { publishEnvelope } from './publish.ts';
import type { PublishableEnvelope, PublishOptions, PublishResult } from './publish.ts';

export interface ConnectOptions {
  /** NATS server URLs; a string may hold several, comma-separated. */
  servers: string | string[];
  user: string;
  password: string;
  /** Connection name shown in the server's monitoring, usually the service name. */
  name: string;
  logger: Logger;
  /** Delay between reconnect attempts, in milliseconds. */
  reconnectTimeWaitMs?: number;
}

/** A service's connection to NATS and JetStream. */
export interface Bus {
  readonly connection: NatsConnection;
  readonly jetstream: JetStreamClient;
  readonly manager: JetStreamManager;
  readonly user: string;
  readonly logger: Logger;
  /** Publishes an envelope; see {@link publishEnvelope}. */
  publish(
    subject: string,
    envelope: PublishableEnvelope,
    options?: PublishOptions,
  ): Promise<PublishResult>;
  /** Opens an existing KV bucket. It never creates one: provisioning does. */
  kv(bucket: string): Promise<KV>;
  /** Consumes a provisioned durable consumer; see {@link consume}. */
  consume(options: Omit<ConsumeOptions, 'bus'>): Promise<RunningConsumer>;
  /** Whether the connection is up (not closed and not reconnecting). */
  isConnected(): boolean;
  /** Drains subscriptions and pending publishes, then closes the connection. */
  close(): Promise<void>;
}

function serverList(servers: string | string[]): string[] {
  const list = Array.isArray(servers) ? servers : [servers];
  return list
    .flatMap((entry) => entry.split(','))
    .map((entry) => entry.trim())
    .filter(Boolean);
}

async function watchStatus(connection: NatsConnection, logger: Logger, state: { up: boolean }) {
  for await (const status of connection.status()) {
    switch (status.type) {
      case 'disconnect':
        state.up = false;
        logger.warn({ server: status.server }, 'NATS connection lost; reconnecting');
        break;
      case 'reconnect':
        state.up = true;
        logger.info({ server: status.server }, 'NATS connection restored');
        break;
      case 'error':
        logger.error({ err: status.error }, 'NATS connection error');
        break;
      case 'slowConsumer':
        logger.warn({ subscription: status.sub.getSubject() }, 'NATS slow consumer');
        break;
      default:
        break;
    }
  }
}

/**
 * Connects with the service's own credentials. The reply inbox prefix is `_INBOX_<user>`
 * (with characters other than letters and digits replaced by `_`), because the generated permissions allow each user only its own inbox. The client
 * reconnects forever and logs every disconnect and reconnect.
 */
export async function connectBus(options: ConnectOptions): Promise<Bus> {
  const { user, logger } = options;
  const servers = serverList(options.servers);
  if (servers.length === 0) {
    throw new Error('connectBus: no NATS server URL given');
  }

  const connection = await connect({
    servers,
    user,
    pass: options.password,
    name: options.name,
    inboxPrefix: inboxPrefix(user),
    maxReconnectAttempts: -1,
    reconnectTimeWait: options.reconnectTimeWaitMs ?? 1_000,
    waitOnFirstConnect: false,
  });
  logger.info({ server: connection.getServer(), user }, 'NATS connected');

  const state = { up: true };
  void watchStatus(connection, logger, state).catch((error: unknown) => {
    logger.error({ err: error }, 'NATS status watcher failed');
  });

  const js = jetstream(connection);
  // The JetStream account-info check is skipped: service users may not call $JS.API.INFO.
  const manager = await jetstreamManager(connection, { checkAPI: false });
  const kvm = new Kvm(js);

  const bus: Bus = {
    connection,
    jetstream: js,
    manager,
    user,
    logger,
    publish: (subject, envelope, publishOptions) =>
      publishEnvelope(js, subject, envelope, publishOptions),
    kv: (bucket) => kvm.open(bucket),
    consume: (consumeOptions) => consume({ ...consumeOptions, bus }),
    isConnected: () => state.up && !connection.isClosed(),
    async close() {
      if (connection.isClosed()) {
        return;
      }
      await connection.drain();
      logger.info({ user }, 'NATS connection drained and closed');
    },
  };
  return bus;
}
