// Private NATS, ClickHouse and Kafka servers for the audit and sink fault tests.
//
// These tests stop, restart and freeze (SIGSTOP) servers, which must never happen to the
// shared test stack that other suites use at the same time. So each test file starts its
// own servers here, on free loopback ports, in a temporary folder, and stops them by pid.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A server process started by this helper. */
export interface ManagedServer {
  readonly name: string;
  /** Process id of the running server, or `undefined` while stopped. */
  readonly pid: number | undefined;
  /** Starts the server (again) with the same data folder and ports; resolves once it accepts requests. */
  start(): Promise<void>;
  /** Stops the server with SIGTERM (SIGKILL after `graceMs`) and waits for the process to exit. */
  stop(graceMs?: number): Promise<void>;
  /**
   * Freezes the process with SIGSTOP and resolves once the kernel reports it stopped:
   * connections stay open but the server sends nothing.
   */
  pause(): Promise<void>;
  /** Resumes a frozen process with SIGCONT. */
  resume(): void;
}

// The local stack installs its tools into this cache (`KEYTOWER_TOOL_CACHE`, default
// ~/.cache/keytower), so the helper finds the same versions there.
const TOOL_CACHE = process.env.KEYTOWER_TOOL_CACHE ?? join(homedir(), '.cache/keytower');
const KAFKA_LIBS = process.env.KEYTOWER_KAFKA_LIBS ?? join(TOOL_CACHE, 'kafka-4.1.1/libs');
const JAVA_17 = '/usr/lib/jvm/java-17-openjdk-amd64/bin/java';
const JAVA = existsSync(JAVA_17) ? JAVA_17 : 'java';
const CLICKHOUSE_SERVER = process.env.KEYTOWER_CLICKHOUSE_SERVER ?? '/usr/sbin/clickhouse-server';

/** Returns the path of the NATS server binary: `KEYTOWER_NATS_SERVER`, the repo's `.tools/bin`, or the version cache. */
export function natsServerPath(): string {
  const candidates = [
    process.env.KEYTOWER_NATS_SERVER,
    join(process.cwd(), '.tools/bin/nats-server'),
    join(TOOL_CACHE, 'nats-server-2.15.3/nats-server'),
  ];
  const found = candidates.find((candidate) => candidate !== undefined && existsSync(candidate));
  if (found === undefined) {
    throw new Error(
      'nats-server not found: set KEYTOWER_NATS_SERVER or run the local stack once to install it',
    );
  }
  return found;
}

/** Returns a loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Creates a temporary folder for one test file's servers. */
export function makeWorkDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `${prefix}-`));
}

/** Removes a folder made by {@link makeWorkDir}. */
export function removeWorkDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

async function tcpAccepts(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

// The state letter in /proc/<pid>/stat: T means stopped by a signal.
function processState(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[0] ?? '?';
  } catch {
    return '?';
  }
}

async function waitUntil(
  description: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) {
      return;
    }
    await sleep(200);
  }
  throw new Error(`${description} timed out after ${timeoutMs} ms`);
}

interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  ready: () => Promise<boolean>;
  readyTimeoutMs: number;
}

class SpawnedServer implements ManagedServer {
  readonly name: string;
  readonly #spec: ProcessSpec;
  #child: ChildProcess | undefined;
  #exited: Promise<void> | undefined;

  constructor(spec: ProcessSpec) {
    this.name = spec.name;
    this.#spec = spec;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async start(): Promise<void> {
    if (this.#child !== undefined) {
      throw new Error(
        `${this.name} start failed: it is already running with pid ${this.#child.pid}`,
      );
    }

    // Append so that a restart keeps the earlier output for debugging.
    const log = openSync(this.#spec.logFile, 'a');
    const child = spawn(this.#spec.command, this.#spec.args, { stdio: ['ignore', log, log] });
    closeSync(log);
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    let exitCode: number | null = null;
    child.once('exit', (code) => {
      exitCode = code;
    });

    await waitUntil(`${this.name} start`, this.#spec.readyTimeoutMs, async () => {
      if (exitCode !== null) {
        throw new Error(
          `${this.name} exited with code ${exitCode} while starting; see ${this.#spec.logFile}`,
        );
      }
      return await this.#spec.ready();
    });
  }

  async stop(graceMs = 20_000): Promise<void> {
    const child = this.#child;
    if (child === undefined) {
      return;
    }

    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const killTimer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.#exited;
    clearTimeout(killTimer);
    this.#child = undefined;
  }

  async pause(): Promise<void> {
    const pid = this.#child?.pid;
    if (pid === undefined) {
      throw new Error(`${this.name} pause failed: it is not running`);
    }
    this.#child?.kill('SIGSTOP');
    await waitUntil(
      `${this.name} to stop after SIGSTOP`,
      5000,
      async () => processState(pid) === 'T',
    );
  }

  resume(): void {
    this.#child?.kill('SIGCONT');
  }
}

/** Ports and folder of a private NATS server. */
export interface NatsServer extends ManagedServer {
  readonly url: string;
}

/** Starts a NATS server with JetStream and no authentication on a free loopback port. */
export async function startNats(dir: string): Promise<NatsServer> {
  const port = await freePort();
  const storeDir = join(dir, 'nats');
  mkdirSync(storeDir, { recursive: true });

  const server = new SpawnedServer({
    name: 'nats-server',
    command: natsServerPath(),
    args: ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir],
    logFile: join(dir, 'nats.log'),
    ready: () => tcpAccepts(port),
    readyTimeoutMs: 15_000,
  });
  await server.start();
  return Object.assign(server, { url: `nats://127.0.0.1:${port}` });
}

/** A private ClickHouse server and its HTTP endpoint. */
export interface ClickHouseServer extends ManagedServer {
  readonly url: string;
}

/** Starts the machine's ClickHouse server with its data in `dir` on free loopback ports. */
export async function startClickHouse(dir: string): Promise<ClickHouseServer> {
  const httpPort = await freePort();
  const tcpPort = await freePort();
  const interserverPort = await freePort();
  const home = join(dir, 'clickhouse');
  for (const sub of ['data', 'tmp', 'user_files']) {
    mkdirSync(join(home, sub), { recursive: true });
  }

  const configFile = join(home, 'config.xml');
  writeFileSync(
    configFile,
    `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>${home}/server.log</log><errorlog>${home}/error.log</errorlog><size>100M</size><count>1</count></logger>
  <http_port>${httpPort}</http_port>
  <tcp_port>${tcpPort}</tcp_port>
  <interserver_http_port>${interserverPort}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <listen_host>127.0.0.1</listen_host>
  <max_connections>256</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>50</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <path>${home}/data/</path>
  <tmp_path>${home}/tmp/</tmp_path>
  <user_files_path>${home}/user_files/</user_files_path>
  <users_config>/etc/clickhouse-server/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mlock_executable>false</mlock_executable>
</yandex>
`,
  );

  const url = `http://127.0.0.1:${httpPort}`;
  const server = new SpawnedServer({
    name: 'clickhouse-server',
    command: CLICKHOUSE_SERVER,
    args: [`--config-file=${configFile}`],
    logFile: join(dir, 'clickhouse.log'),
    ready: async () => {
      try {
        const response = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1000) });
        return response.ok;
      } catch {
        return false;
      }
    },
    readyTimeoutMs: 30_000,
  });
  await server.start();
  return Object.assign(server, { url });
}

/** A private single-node KRaft Kafka broker. */
export interface KafkaServer extends ManagedServer {
  readonly brokers: string[];
}

/** Formats and starts a single-node Kafka 4 broker (KRaft) with its data in `dir` on free loopback ports. */
export async function startKafka(dir: string): Promise<KafkaServer> {
  const port = await freePort();
  const controllerPort = await freePort();
  const home = join(dir, 'kafka');
  mkdirSync(home, { recursive: true });

  const propertiesFile = join(home, 'kraft.properties');
  writeFileSync(
    propertiesFile,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      `log.dirs=${home}/data`,
      'offsets.topic.replication.factor=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'auto.create.topics.enable=false',
      '',
    ].join('\n'),
  );

  const classpath = `${KAFKA_LIBS}/*`;
  const format = spawnSync(
    JAVA,
    [
      '-cp',
      classpath,
      'kafka.tools.StorageTool',
      'format',
      '--standalone',
      '-t',
      'a2V5dG93ZXItYXVkaXQtMQ',
      '-c',
      propertiesFile,
    ],
    { encoding: 'utf8' },
  );
  if (format.status !== 0) {
    throw new Error(`kafka storage format failed with status ${format.status}: ${format.stderr}`);
  }

  const server = new SpawnedServer({
    name: 'kafka',
    command: JAVA,
    args: [
      '-Xmx512m',
      '-Xms128m',
      '-XX:+UseSerialGC',
      '-cp',
      classpath,
      'kafka.Kafka',
      propertiesFile,
    ],
    logFile: join(dir, 'kafka.log'),
    ready: () => tcpAccepts(port),
    readyTimeoutMs: 60_000,
  });
  await server.start();
  return Object.assign(server, { brokers: [`127.0.0.1:${port}`] });
}
