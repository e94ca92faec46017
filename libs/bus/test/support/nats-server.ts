import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { readStackDescriptor } from '@keytower/config';

/** Path of the nats-server binary the test bed provides. */
export const NATS_SERVER_BINARY = join(homedir(), '.cache/keytower/nats-server-2.15.3/nats-server');

/** A nats-server process a test started in a temporary folder. */
export interface TestNatsServer {
  url: string;
  port: number;
  dir: string;
  /** Stops the process and keeps its data, so `restart` resumes from the same store. */
  stop(): Promise<void>;
  /** Starts the server again on the same port and store. */
  restart(): Promise<void>;
  /** Stops the process and removes its folder. */
  destroy(): Promise<void>;
}

export interface StartServerOptions {
  /** Extra configuration appended to the generated file (for example an `include`). */
  extraConfig?: string;
  /** Environment of the server process (for example the password variables). */
  env?: Record<string, string>;
  /** Files written next to the configuration, by name; `include` paths are relative to it. */
  files?: Record<string, string>;
  /** Whether to generate an `admin` user with a random password; defaults to true. */
  withAdminUser?: boolean;
}

/** Admin credentials of a server started with the generated `admin` user. */
export interface NatsTarget {
  url: string;
  user: string;
  password: string;
  /** Present when the test started the server itself. */
  server?: TestNatsServer;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

async function waitUntilReachable(
  url: string,
  child: ChildProcess,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`nats-server exited with code ${child.exitCode}:\n${output()}`);
    }
    try {
      // An unauthenticated probe: an authorization error still proves the server listens.
      const probe = await connect({ servers: url, timeout: 500, reconnect: false });
      await probe.close();
      return;
    } catch (error) {
      if (/authorization/i.test(String(error))) {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`nats-server at ${url} did not become reachable within 10 s:\n${output()}`);
}

/**
 * Starts a JetStream-enabled nats-server on a free loopback port with its store in a new
 * temporary folder.
 */
export async function startNatsServer(
  options: StartServerOptions = {},
): Promise<TestNatsServer & { adminPassword: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'keytower-bus-test-'));
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  const adminPassword = randomBytes(12).toString('hex');
  const withAdminUser = options.withAdminUser ?? true;

  const config = [
    `listen: "127.0.0.1:${port}"`,
    `jetstream { store_dir: ${JSON.stringify(join(dir, 'store'))} }`,
    withAdminUser
      ? `authorization { users = [ { user: "admin", password: ${JSON.stringify(adminPassword)} } ] }`
      : '',
    options.extraConfig ?? '',
  ].join('\n');
  for (const [name, content] of Object.entries(options.files ?? {})) {
    writeFileSync(join(dir, name), content);
  }
  const configPath = join(dir, 'nats.conf');
  writeFileSync(configPath, config);

  let child: ChildProcess | undefined;
  let output = '';

  async function launch(): Promise<void> {
    output = '';
    const started = spawn(NATS_SERVER_BINARY, ['-c', configPath], {
      env: { ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = started;
    started.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    started.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitUntilReachable(url, started, () => output);
  }

  async function stop(): Promise<void> {
    const running = child;
    child = undefined;
    if (running === undefined || running.exitCode !== null) {
      return;
    }
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  try {
    await launch();
  } catch (error) {
    await stop();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    port,
    dir,
    adminPassword,
    stop,
    restart: launch,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Returns the NATS server the bus tests use. With `KEYTOWER_STACK_FILE` set it is the test
 * stack's, with its `admin` user. Otherwise this process starts a server and must destroy it.
 */
export async function natsTarget(): Promise<NatsTarget> {
  if (process.env.KEYTOWER_STACK_FILE) {
    const stack = readStackDescriptor();
    const admin = stack.nats.users.admin;
    if (admin === undefined) {
      throw new Error('the stack descriptor has no admin NATS user');
    }
    return { url: stack.nats.url, user: admin.user, password: admin.password };
  }
  const server = await startNatsServer();
  return { url: server.url, user: 'admin', password: server.adminPassword, server };
}
