// A NATS server for package tests: the test stack's when KEYTOWER_STACK_FILE is set,
// otherwise a private nats-server on 127.0.0.1:34222 (a free port when that one is taken)
// with the users and permissions generated from the contracts and the topology provisioned.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectBus, provision } from '@keytower/bus';
import type { Bus } from '@keytower/bus';
import { readStackDescriptor } from '@keytower/config';
import {
  NATS_USERS,
  STREAMS,
  parseMessage,
  passwordVariable,
  renderAuthorizationConf,
  topology,
} from '@keytower/contracts';
import type { Envelope } from '@keytower/contracts';
import { pino } from 'pino';

const NATS_SERVER = join(homedir(), '.cache/keytower/nats-server-2.15.3/nats-server');
/** The port a private server takes unless the caller names another; a free port when taken. */
const DEFAULT_PORT = 34222;

export const quietLogger = pino({ level: 'silent' });

export interface Credential {
  user: string;
  password: string;
}

/** A NATS server with keytower's users and topology. */
export interface NatsEnvironment {
  url: string;
  users: Record<string, Credential>;
  /** Stops the server when the test started it; does nothing for the test stack. */
  stop(): Promise<void>;
}

async function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        resolve(typeof address === 'object' && address !== null ? address.port : 0),
      );
    });
  });
}

/** Returns the test stack's NATS when KEYTOWER_STACK_FILE is set, else starts a private one. */
export async function natsEnvironment(
  options: { preferredPort?: number } = {},
): Promise<NatsEnvironment> {
  if (process.env.KEYTOWER_STACK_FILE) {
    const stack = readStackDescriptor();
    return { url: stack.nats.url, users: stack.nats.users, stop: async () => undefined };
  }

  const dir = mkdtempSync(join(tmpdir(), 'keytower-test-nats-'));
  const preferred = options.preferredPort ?? DEFAULT_PORT;
  const port = (await isPortFree(preferred)) ? preferred : await freePort();
  const url = `nats://127.0.0.1:${port}`;
  const users: Record<string, Credential> = {};
  const env: Record<string, string> = {};
  for (const user of NATS_USERS) {
    const password = randomBytes(12).toString('hex');
    users[user] = { user, password };
    env[passwordVariable(user)] = password;
  }
  const configPath = join(dir, 'nats.conf');
  writeFileSync(
    configPath,
    [
      `listen: "127.0.0.1:${port}"`,
      `jetstream { store_dir: ${JSON.stringify(join(dir, 'store'))} }`,
      renderAuthorizationConf(),
    ].join('\n'),
  );

  const child = spawn(NATS_SERVER, ['-c', configPath], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));

  async function stop(): Promise<void> {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }

  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`nats-server exited with code ${child.exitCode}:\n${output}`);
    }
    try {
      const admin = users.admin as Credential;
      const bus = await connectBus({
        servers: url,
        ...admin,
        name: 'connector-test-provision',
        logger: quietLogger,
      });
      try {
        await provision(bus.connection, topology, { logger: quietLogger });
      } finally {
        await bus.close();
      }
      return { url, users, stop };
    } catch (error) {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(
          `nats-server at ${url} was not ready within 10 s: ${String(error)}\n${output}`,
        );
      }
      await sleep(200);
    }
  }
}

/** Connects as one of the environment's users. */
export async function connectAs(environment: NatsEnvironment, user: string): Promise<Bus> {
  const credential = environment.users[user];
  if (credential === undefined) {
    throw new Error(`the NATS environment has no user "${user}"`);
  }
  return connectBus({
    servers: environment.url,
    ...credential,
    name: `test-${user}`,
    logger: quietLogger,
  });
}

/** Counts the messages KMS_EVENTS stores on each subject that ends with `keyId`. */
export async function countEvents(admin: Bus, keyId: string): Promise<Record<string, number>> {
  const info = await admin.manager.streams.info(STREAMS.events, {
    subjects_filter: `kms.evt.v1.*.*.${keyId}`,
  });
  return { ...(info.state.subjects ?? {}) };
}

/** Reads every event KMS_EVENTS stores for `keyId`, waiting until at least `count` exist. */
export async function waitForEvents(
  admin: Bus,
  keyId: string,
  count: number,
  timeoutMs = 10_000,
): Promise<Envelope[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = await countEvents(admin, keyId);
    const total = Object.values(counts).reduce((sum, value) => sum + value, 0);
    if (total >= count) {
      break;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `expected ${count} events for ${keyId} within ${timeoutMs} ms, found ${total}: ${JSON.stringify(counts)}`,
      );
    }
    await sleep(50);
  }

  const consumer = await admin.jetstream.consumers.get(STREAMS.events, {
    filter_subjects: [`kms.evt.v1.*.*.${keyId}`],
  });
  const envelopes: Envelope[] = [];
  const batch = await consumer.fetch({ max_messages: 100, expires: 1_000 });
  for await (const message of batch) {
    const parsed = parseMessage(message.data);
    if (!parsed.ok) {
      throw new Error(`stored event does not match the contracts: ${parsed.error.message}`);
    }
    envelopes.push(parsed.message);
    if (message.info.pending === 0) {
      break;
    }
  }
  return envelopes;
}
