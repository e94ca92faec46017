/**
 * The native local stack: `node deploy/local/stack.ts up|status|down --profile <name> [--port-offset N]`.
 *
 * `up` installs what is missing, starts NATS, ClickHouse and Kafka, initialises the SoftHSM2
 * token, provisions the JetStream topology and writes `.data/<profile>/stack.json`. It is
 * idempotent: servers that already run healthy are left alone. `status` exits non-zero unless every
 * server is healthy. `down` stops the servers by their pid files and removes the descriptor.
 */
import { mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ensureAptPackages } from './apt.ts';
import { clickhouse } from './clickhouse.ts';
import { buildDescriptor, removeDescriptor, writeDescriptor } from './descriptor.ts';
import { kafka } from './kafka.ts';
import { configuredNatsUsers, nats } from './nats.ts';
import { isPortOpen } from './process.ts';
import { resolveProfile, type Profile } from './profile.ts';
import { provisionTopology } from './provision.ts';
import { createReporter, type Reporter } from './reporter.ts';
import type { ServerStatus } from './server.ts';
import { softhsm } from './softhsm.ts';

const SERVERS = [nats, clickhouse, kafka, softhsm];
const USAGE = 'usage: node deploy/local/stack.ts up|status|down --profile <name> [--port-offset N]';

/** KafkaJS 2.2.4 schedules a negative timeout on Node 24, which prints a harmless warning per client. */
function silenceKafkaJsTimeoutWarning(): void {
  const listeners = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name === 'TimeoutNegativeWarning') {
      return;
    }
    for (const listener of listeners) {
      listener(warning);
    }
  });
}

async function up(profile: Profile, report: Reporter): Promise<void> {
  const started = Date.now();
  mkdirSync(profile.runDir, { recursive: true });
  mkdirSync(profile.logsDir, { recursive: true });

  await ensureAptPackages(report);
  for (const server of SERVERS) {
    await server.install(report);
  }

  // The servers start one after another because the machine may have as few as two cores and
  // Kafka's JVM start is the slowest step; a parallel start would only contend for them.
  for (const server of SERVERS) {
    await server.up(profile, report);
  }

  await provisionTopology(profile, report);
  writeDescriptor(profile, buildDescriptor(profile, configuredNatsUsers()));
  report.step(
    `up in ${((Date.now() - started) / 1000).toFixed(1)} s; descriptor ${profile.descriptorFile}`,
  );
}

function formatStatus(status: ServerStatus): string {
  const state = status.healthy ? 'healthy' : status.running ? 'unhealthy' : 'stopped';
  const pid = status.pid === undefined ? '-' : String(status.pid);
  const ports = status.ports.length === 0 ? '-' : status.ports.join(',');
  return `${status.name.padEnd(11)} ${state.padEnd(10)} pid ${pid.padEnd(8)} ports ${ports.padEnd(18)} ${status.detail}`;
}

async function status(profile: Profile): Promise<boolean> {
  const statuses: ServerStatus[] = [];
  for (const server of SERVERS) {
    statuses.push(await server.status(profile));
  }
  console.log(
    `profile ${profile.name} (port offset ${profile.portOffset}, data ${profile.dataDir})`,
  );
  for (const entry of statuses) {
    console.log(formatStatus(entry));
  }
  return statuses.every((entry) => entry.healthy);
}

async function down(profile: Profile, report: Reporter): Promise<void> {
  removeDescriptor(profile);
  for (const server of [...SERVERS].reverse()) {
    await server.down(profile, report);
  }

  const stillOpen: number[] = [];
  for (const port of Object.values(profile.ports)) {
    if (await isPortOpen(port)) {
      stillOpen.push(port);
    }
  }
  if (stillOpen.length > 0) {
    report.warn(
      `ports still open after down (another program may use them): ${stillOpen.join(', ')}`,
    );
  }
  report.step('down');
}

async function main(): Promise<number> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      profile: { type: 'string' },
      'port-offset': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }

  const [command, ...extra] = positionals;
  if (command === undefined || extra.length > 0 || !['up', 'status', 'down'].includes(command)) {
    console.error(USAGE);
    return 2;
  }
  if (values.profile === undefined) {
    console.error(`missing --profile\n${USAGE}`);
    return 2;
  }
  const offsetText = values['port-offset'];
  if (offsetText !== undefined && !/^\d+$/.test(offsetText)) {
    console.error(`invalid --port-offset "${offsetText}": expected a non-negative integer`);
    return 2;
  }

  const profile = resolveProfile(
    values.profile,
    offsetText === undefined ? undefined : Number(offsetText),
  );
  const report = createReporter(profile.name);
  silenceKafkaJsTimeoutWarning();

  switch (command) {
    case 'up':
      await up(profile, report);
      return 0;
    case 'status':
      return (await status(profile)) ? 0 : 1;
    default:
      await down(profile, report);
      return 0;
  }
}

try {
  process.exitCode = await main();
} catch (error) {
  console.error(`stack: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
