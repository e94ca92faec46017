// A private NATS server with the keytower topology, plus helpers to feed source messages
// to the audit writer and to read what it wrote. Used by the audit and sink fault tests.

import { connectBus, provision, type Bus } from '@keytower/bus';
import {
  buildEnvelope,
  DURABLES,
  STREAMS,
  deriveKeyId,
  newCommandId,
  subjects,
  topology,
  type Topology,
} from '@keytower/contracts';
import type { AuditRecord } from '@keytower/audit-chain';
import { createLogger, type Logger } from '@keytower/telemetry';

import { startNats, type NatsServer } from './audit-servers.ts';

/** A running NATS server with the topology applied and an admin connection. */
export interface AuditBus {
  nats: NatsServer;
  admin: Bus;
  logger: Logger;
  /** Connects as a service user. The server has no authentication, so any password works. */
  connect(user: string): Promise<Bus>;
  close(): Promise<void>;
}

/** Consumer settings that a test shortens so redelivery and takeover happen in test time. */
export interface TopologyOverrides {
  /** Ack wait of the audit writer and sink durables, in seconds. */
  ackWaitSeconds?: number;
}

/** Returns the topology with the audit durables' ack wait replaced. */
export function testTopology(overrides: TopologyOverrides): Topology {
  const audited = new Set<string>([
    DURABLES.auditWriter,
    DURABLES.sinkClickhouse,
    DURABLES.sinkKafka,
  ]);
  return {
    ...topology,
    consumers: topology.consumers.map((consumer) =>
      overrides.ackWaitSeconds !== undefined && audited.has(consumer.durable)
        ? { ...consumer, ackWaitSeconds: overrides.ackWaitSeconds }
        : consumer,
    ),
  };
}

/** Starts NATS in `dir`, applies the topology and connects as `admin`. */
export async function startAuditBus(
  dir: string,
  overrides: TopologyOverrides = {},
): Promise<AuditBus> {
  const nats = await startNats(dir);
  const logger = createLogger({
    service: 'audit-test',
    level: (process.env.KEYTOWER_TEST_LOG_LEVEL as 'warn' | undefined) ?? 'silent',
  });
  const buses: Bus[] = [];

  async function connect(user: string): Promise<Bus> {
    const bus = await connectBus({
      servers: nats.url,
      user,
      password: 'unused',
      name: `test-${user}`,
      logger: logger.child({ user }),
    });
    buses.push(bus);
    return bus;
  }

  const admin = await connect('admin');
  await provision(admin.connection, testTopology(overrides), { logger });

  return {
    nats,
    admin,
    logger,
    connect,
    async close() {
      for (const bus of buses.reverse()) {
        await bus.close().catch(() => undefined);
      }
      await nats.stop();
    },
  };
}

/** Publishes `count` create commands to `KMS_COMMANDS`; returns their key ids in order. */
export async function publishCommands(
  admin: Bus,
  count: number,
  label = 'audit-test',
): Promise<string[]> {
  const keyIds: string[] = [];
  for (let index = 0; index < count; index += 1) {
    const id = newCommandId();
    const keyId = deriveKeyId(id);
    const envelope = buildEnvelope({
      id,
      type: 'keytower.command.key.create.v1',
      subject: keyId,
      source: 'keytower/tests',
      actor: 'user:auditor-test',
      data: {
        provider: 'hsm',
        purpose: 'encrypt',
        algorithm: 'AES_256',
        label: `${label}-${index}`,
      },
    });
    await admin.publish(subjects.command('create', keyId), envelope);
    keyIds.push(keyId);
  }
  return keyIds;
}

/** Returns the number of messages in a stream. */
export async function streamCount(admin: Bus, stream: string): Promise<number> {
  const info = await admin.manager.streams.info(stream);
  return info.state.messages;
}

/** Reads every record in `KMS_AUDIT`, in stream order. */
export async function readAuditRecords(admin: Bus): Promise<AuditRecord[]> {
  const info = await admin.manager.streams.info(STREAMS.audit);
  const records: AuditRecord[] = [];
  for (
    let seq = info.state.first_seq;
    seq <= info.state.last_seq && info.state.messages > 0;
    seq += 1
  ) {
    const message = await admin.manager.streams.getMessage(STREAMS.audit, { seq });
    if (message !== null) {
      records.push(message.json<AuditRecord>());
    }
  }
  return records;
}

/** Polls `check` every 100 ms until it returns true; raises after `timeoutMs`. */
export async function waitFor(
  description: string,
  timeoutMs: number,
  check: () => Promise<boolean> | boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
