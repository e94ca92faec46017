/**
 * The native local stack end to end on its own profile (`stacktest`, port offset 12000), so it runs
 * beside the `test` stack that `npm test` brings up: `up` twice, `status`, then `down`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { Kafka, logLevel } from 'kafkajs';
import { readStackDescriptor, type StackDescriptor } from '@keytower/config';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PROFILE = 'stacktest';
const PORT_OFFSET = '12000';
const DATA_DIR = join(REPO_ROOT, '.data', PROFILE);
const DESCRIPTOR_FILE = join(DATA_DIR, 'stack.json');
const SERVERS_WITH_PROCESS = ['nats', 'clickhouse', 'kafka'];
/** Every base port of the stack plus the offset: NATS, monitoring, ClickHouse HTTP/TCP/interserver, Kafka, controller. */
const PORTS = [4222, 8222, 8123, 9000, 9009, 9092, 9093].map((port) => port + Number(PORT_OFFSET));
/** A second `up` on a running stack only checks health; it must not take anywhere near a first start. */
const SECOND_UP_LIMIT_MS = 15_000;

interface StackRun {
  code: number;
  output: string;
  durationMs: number;
}

function stack(command: 'up' | 'status' | 'down'): Promise<StackRun> {
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(
      process.execPath,
      ['deploy/local/stack.ts', command, '--profile', PROFILE, '--port-offset', PORT_OFFSET],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) =>
      resolvePromise({ code: code ?? 1, output, durationMs: Date.now() - started }),
    );
  });
}

function pids(): Record<string, number> {
  const runDir = join(DATA_DIR, 'run');
  const result: Record<string, number> = {};
  for (const file of existsSync(runDir) ? readdirSync(runDir) : []) {
    if (file.endsWith('.pid')) {
      result[file.slice(0, -'.pid'.length)] = Number(
        readFileSync(join(runDir, file), 'utf8').trim(),
      );
    }
  }
  return result;
}

/**
 * Returns true while the process runs. A zombie counts as stopped: it has exited, and on machines
 * whose init does not reap orphans it keeps its pid entry until reboot.
 */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8') : '';
  return stat !== '' && stat.split(') ')[1]?.[0] !== 'Z';
}

function isPortOpen(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolvePromise(true);
    });
    socket.once('error', () => resolvePromise(false));
  });
}

function configMtimes(): Record<string, number> {
  const files = [
    'nats/nats.conf',
    'clickhouse/config.xml',
    'clickhouse/users.xml',
    'kafka/kraft.properties',
    'softhsm/softhsm2.conf',
  ];
  return Object.fromEntries(files.map((file) => [file, statSync(join(DATA_DIR, file)).mtimeMs]));
}

describe('local stack', { timeout: 600_000 }, () => {
  let firstPids: Record<string, number> = {};
  let descriptor: StackDescriptor;

  before(async () => {
    const cleanup = await stack('down');
    assert.equal(cleanup.code, 0, cleanup.output);
  });

  after(async () => {
    await stack('down');
  });

  test('up starts every server', async () => {
    const run = await stack('up');

    assert.equal(run.code, 0, run.output);
    firstPids = pids();
    assert.deepEqual(Object.keys(firstPids).sort(), [...SERVERS_WITH_PROCESS].sort());
    for (const [server, pid] of Object.entries(firstPids)) {
      assert.ok(isAlive(pid), `${server} pid ${pid} is not running`);
    }
    descriptor = readStackDescriptor(DESCRIPTOR_FILE);
    assert.equal(descriptor.profile, PROFILE);
    assert.equal(descriptor.nats.url, `nats://127.0.0.1:${4222 + Number(PORT_OFFSET)}`);
  });

  test('second up is fast and changes nothing', async () => {
    const descriptorBefore = readFileSync(DESCRIPTOR_FILE, 'utf8');
    const mtimesBefore = configMtimes();

    const run = await stack('up');

    assert.equal(run.code, 0, run.output);
    assert.ok(run.durationMs < SECOND_UP_LIMIT_MS, `second up took ${run.durationMs} ms`);
    assert.deepEqual(pids(), firstPids);
    assert.deepEqual(configMtimes(), mtimesBefore);
    assert.equal(readFileSync(DESCRIPTOR_FILE, 'utf8'), descriptorBefore);
    assert.doesNotMatch(run.output, /started|initialised|created|formatting/);
  });

  test('status reports every server healthy', async () => {
    const run = await stack('status');

    assert.equal(run.code, 0, run.output);
    for (const server of [...SERVERS_WITH_PROCESS, 'softhsm']) {
      assert.match(run.output, new RegExp(`^${server}\\s+healthy`, 'm'), `${server} line`);
    }
    for (const [server, pid] of Object.entries(firstPids)) {
      assert.match(
        run.output,
        new RegExp(`^${server}\\s+healthy\\s+pid ${pid}\\b`, 'm'),
        `${server} pid`,
      );
    }
  });

  test('secrets are private to the owner', () => {
    const secretsDir = descriptor.secretsDir;
    assert.equal(statSync(secretsDir).mode & 0o777, 0o700);
    for (const file of readdirSync(secretsDir)) {
      assert.equal(statSync(join(secretsDir, file)).mode & 0o777, 0o600, file);
    }
    assert.equal(statSync(DESCRIPTOR_FILE).mode & 0o777, 0o600);
  });

  test('NATS accepts descriptor passwords only', async () => {
    const admin = descriptor.nats.users.admin;
    assert.ok(admin, 'descriptor has no admin user');

    const connection = await connect({
      servers: descriptor.nats.url,
      user: admin.user,
      pass: admin.password,
      reconnect: false,
    });
    const jetstreamInfo = await connection.request('$JS.API.INFO', undefined, { timeout: 2000 });
    await connection.close();
    assert.match(
      jetstreamInfo.string(),
      /"type":"io\.nats\.jetstream\.api\.v1\.account_info_response"/,
    );

    await assert.rejects(
      connect({
        servers: descriptor.nats.url,
        user: admin.user,
        pass: `${admin.password}-wrong`,
        reconnect: false,
      }),
      /Authorization Violation/i,
    );
  });

  test('ClickHouse has the keytower database', async () => {
    const url = new URL(descriptor.clickhouse.url);
    url.searchParams.set(
      'query',
      `SELECT count() FROM system.databases WHERE name = '${descriptor.clickhouse.database}'`,
    );

    const response = await fetch(url);

    assert.equal(response.status, 200);
    assert.equal((await response.text()).trim(), '1');
  });

  test('Kafka has the SIEM topic', async () => {
    const kafka = new Kafka({
      clientId: 'stack-test',
      brokers: descriptor.kafka.brokers,
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const topics = await admin.listTopics();
      assert.ok(topics.includes(descriptor.kafka.topic), `topics: ${topics.join(', ')}`);
    } finally {
      await admin.disconnect();
    }
  });

  test('SoftHSM2 has the keytower token', async () => {
    const output = await new Promise<string>((resolvePromise, reject) => {
      const child = spawn('softhsm2-util', ['--show-slots'], {
        env: { ...process.env, SOFTHSM2_CONF: descriptor.hsm.softhsm2Conf },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
      child.once('error', reject);
      child.once('close', () => resolvePromise(text));
    });

    assert.match(output, new RegExp(`Label:\\s+${descriptor.hsm.tokenLabel}\\s*$`, 'm'));
    assert.ok(
      readFileSync(descriptor.hsm.pinFile, 'utf8').trim().length >= 8,
      'user PIN too short',
    );
  });

  test('down stops every server', async () => {
    const run = await stack('down');

    assert.equal(run.code, 0, run.output);
    for (const [server, pid] of Object.entries(firstPids)) {
      assert.equal(isAlive(pid), false, `${server} pid ${pid} still runs`);
    }
    for (const port of PORTS) {
      assert.equal(await isPortOpen(port), false, `port ${port} still open`);
    }
    assert.deepEqual(pids(), {});
    assert.equal(existsSync(DESCRIPTOR_FILE), false, 'descriptor left behind');

    const status = await stack('status');
    assert.notEqual(status.code, 0, status.output);
    for (const server of SERVERS_WITH_PROCESS) {
      assert.match(status.output, new RegExp(`^${server}\\s+stopped`, 'm'), `${server} line`);
    }
  });
});
