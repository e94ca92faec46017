/**
 * `npm run bench [-- --quick]`: measures keytower's HSM path against its baselines on a stack
 * profile of its own (`bench`, ports + 35000), prints a table and appends a dated section to
 * docs/BENCHMARKS.md. `--quick` uses small counts and finishes in under two minutes.
 *
 * 1. Lifecycle: `create AES_256` commands through policy → connector-hsm → event → projection,
 *    against a direct PKCS#11 loop doing the same token work, at 1 and 8 commands in flight.
 * 2. Audit: a backlog drained by the audit writer into ClickHouse and Kafka, against the raw
 *    JetStream publish-and-consume ceiling measured in the same run.
 *
 * The stack and services are stopped at the end, also when a measurement fails.
 */
import { rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectBus, type Bus } from '@keytower/bus';
import { readStackDescriptor, type StackDescriptor } from '@keytower/config';
import { createLogger } from '@keytower/telemetry';
import { runAuditBacklog } from './lib/bench-audit.ts';
import { runJetStreamCeiling, type JetStreamCeilingResult } from './lib/bench-jetstream.ts';
import { describeMachine } from './lib/bench-machine.ts';
import { BENCH_ACTOR, runPipelineLoop } from './lib/bench-pipeline.ts';
import type { DirectLoopResult } from './lib/bench-pkcs11.ts';
import { runDirectLoopIsolated } from './lib/bench-pkcs11-process.ts';
import {
  appendToBenchmarksPage,
  formatConsoleTable,
  type BenchResults,
  type LifecycleComparison,
} from './lib/bench-report.ts';
import { hideKafkaJsTimeoutWarning } from './lib/demo-kafka.ts';
import { connectAdmin } from './lib/demo-nats.ts';
import { startServices, type RunningServices } from './lib/demo-services.ts';
import { requireNode24 } from './lib/node-version.ts';
import { REPO_ROOT } from './lib/repo.ts';
import { runStack } from './lib/stack-command.ts';

requireNode24();
hideKafkaJsTimeoutWarning();

const PROFILE = 'bench';
const PORT_OFFSET = 35000;
/**
 * Health port of the first service. It lies below Linux's default ephemeral range (32768 to
 * 60999), where an outgoing connection's local port can take a listening port away at random.
 */
const HEALTH_PORT_BASE = 27100;
const BENCHMARKS_PAGE = join(REPO_ROOT, 'docs', 'BENCHMARKS.md');
const COMMAND_TIMEOUT_MS = 60_000;
const AUDIT_TIMEOUT_MS = 180_000;
const RAW_ROUNDS = 3;
/** Runs of the direct loop allowed per level; SoftHSM 2.6.1 may crash under concurrent load. */
const MAX_DIRECT_ATTEMPTS = 2;

/** Counts per mode; the quick ones keep the whole run under two minutes on a 2-core machine. */
const SIZES = {
  quick: {
    warmup: 10,
    sequential: 50,
    concurrent: 150,
    concurrency: 8,
    auditBurst: 150,
    rawMessages: 5000,
  },
  full: {
    warmup: 30,
    sequential: 300,
    concurrent: 1000,
    concurrency: 8,
    auditBurst: 1000,
    rawMessages: 50000,
  },
} as const;

function note(message: string): void {
  console.log(`[bench] ${message}`);
}

async function connectClient(descriptor: StackDescriptor): Promise<Bus> {
  const cli = descriptor.nats.users.cli;
  if (cli === undefined) {
    throw new Error(`the stack descriptor of profile ${descriptor.profile} has no NATS user "cli"`);
  }
  return await connectBus({
    servers: descriptor.nats.url,
    user: cli.user,
    password: cli.password,
    name: 'keytower-bench',
    logger: createLogger({ service: 'keytower-bench', level: 'warn', destination: process.stderr }),
  });
}

async function measure(
  descriptor: StackDescriptor,
  services: RunningServices,
  mode: 'quick' | 'full',
  command: string,
): Promise<BenchResults> {
  const sizes = SIZES[mode];
  const runId = Date.now().toString(36);
  const loadAtStart = loadavg()[0] ?? 0;
  const client = await connectClient(descriptor);
  const admin = await connectAdmin(descriptor, 'keytower-bench-admin');
  try {
    note(`warming up: ${sizes.warmup} commands through the pipeline, ${sizes.warmup} direct keys`);
    await runPipelineLoop(client, {
      commands: sizes.warmup,
      concurrency: 2,
      runId: `${runId}w`,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    await runDirectLoopIsolated(descriptor, {
      keys: sizes.warmup,
      concurrency: 2,
      runId: `${runId}w`,
    });

    const lifecycle: LifecycleComparison[] = [];
    for (const [concurrency, count] of [
      [1, sizes.sequential],
      [sizes.concurrency, sizes.concurrent],
    ] as const) {
      // The direct loop runs first and destroys its keys, so both loops start with the same number
      // of objects on the token, which SoftHSM2 searches through on every C_FindObjects.
      note(`lifecycle, ${concurrency} in flight: ${count} keys through the direct PKCS#11 loop`);
      const directCrashes: string[] = [];
      let direct: DirectLoopResult | undefined;
      while (direct === undefined) {
        try {
          direct = await runDirectLoopIsolated(descriptor, {
            keys: count,
            concurrency,
            runId: `${runId}d${concurrency}x${directCrashes.length}`,
          });
        } catch (error) {
          const reason = error instanceof Error ? error.message : String(error);
          directCrashes.push(reason);
          note(`  WARNING: ${reason}`);
          if (directCrashes.length >= MAX_DIRECT_ATTEMPTS) {
            throw error;
          }
        }
      }
      note(
        `  ${direct.keysPerSecond.toFixed(1)} keys/s, p50 ${direct.latency.p50Ms.toFixed(1)} ms, p99 ${direct.latency.p99Ms.toFixed(1)} ms, ${direct.succeeded} succeeded${Object.keys(direct.failures).length > 0 ? `, failed: ${JSON.stringify(direct.failures)}` : ''}`,
      );
      note(`lifecycle, ${concurrency} in flight: ${count} create commands through keytower`);
      const pipeline = await runPipelineLoop(client, {
        commands: count,
        concurrency,
        runId: `${runId}c${concurrency}`,
        commandTimeoutMs: COMMAND_TIMEOUT_MS,
      });
      note(
        `  ${pipeline.commandsPerSecond.toFixed(1)} commands/s, p50 ${pipeline.latency.p50Ms.toFixed(1)} ms, p99 ${pipeline.latency.p99Ms.toFixed(1)} ms, ${pipeline.succeeded} succeeded`,
      );
      if (pipeline.succeeded !== count) {
        // Reported with the results instead of ending the run: a failed command is part of the figure.
        note(
          `  WARNING: ${count - pipeline.succeeded} command(s) did not succeed: ${JSON.stringify(pipeline.unsuccessful)}`,
        );
      }
      lifecycle.push({ concurrency, pipeline, direct, directCrashes });
    }

    note(
      `audit: stopping the writer and sinks, running ${sizes.auditBurst} commands, then draining the backlog`,
    );
    const audit = await runAuditBacklog({
      descriptor,
      admin,
      services,
      timeoutMs: AUDIT_TIMEOUT_MS,
      burst: async () => {
        const burst = await runPipelineLoop(client, {
          commands: sizes.auditBurst,
          concurrency: sizes.concurrency,
          runId: `${runId}a`,
          commandTimeoutMs: COMMAND_TIMEOUT_MS,
        });
        // A failed command is audited like a successful one, so the backlog stays complete.
        if (burst.succeeded !== sizes.auditBurst) {
          note(
            `  WARNING: ${sizes.auditBurst - burst.succeeded} burst command(s) did not succeed: ${JSON.stringify(burst.unsuccessful)}`,
          );
        }
      },
    });
    note(
      `  ${audit.sourceMessages} records: writer ${audit.writer.recordsPerSecond.toFixed(0)}/s, ClickHouse ${audit.clickhouse.recordsPerSecond.toFixed(0)}/s, Kafka ${audit.kafka.recordsPerSecond.toFixed(0)}/s`,
    );

    note(
      `raw JetStream: ${RAW_ROUNDS} rounds of ${sizes.rawMessages} messages of ${audit.meanRecordBytes} bytes published and consumed`,
    );
    // A ceiling is the best the server does, so the fastest of a few rounds counts.
    let jetstream: JetStreamCeilingResult | undefined;
    for (let round = 1; round <= RAW_ROUNDS; round += 1) {
      const result = await runJetStreamCeiling(admin, {
        messages: sizes.rawMessages,
        messageBytes: Math.max(audit.meanRecordBytes, 1),
        runId: `${runId}r${round}`,
      });
      note(`  round ${round}: ${result.messagesPerSecond.toFixed(0)} messages/s`);
      if (jetstream === undefined || result.messagesPerSecond > jetstream.messagesPerSecond) {
        jetstream = result;
      }
    }
    if (jetstream === undefined) {
      throw new Error('the raw JetStream loop did not run');
    }

    return {
      date: new Date(),
      command,
      mode,
      machine: describeMachine(),
      loadAverage: { start: loadAtStart, end: loadavg()[0] ?? 0 },
      lifecycle,
      audit,
      jetstream,
    };
  } finally {
    await client.close();
    await admin.close();
  }
}

let services: RunningServices | undefined;
let stopping: Promise<void> | undefined;

/** Stops the services, then takes the stack down. Safe to call more than once. */
function stopEverything(): Promise<void> {
  stopping ??= (async () => {
    await services?.stopAll();
    await runStack('down', PROFILE, PORT_OFFSET);
  })();
  return stopping;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const mode = values.quick === true ? 'quick' : 'full';
  const command = `npm run bench${mode === 'quick' ? ' -- --quick' : ''}`;
  const started = performance.now();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      note(`${signal} received: stopping`);
      void stopEverything().then(() => process.exit(130));
    });
  }

  // Each run starts from an empty token and empty streams: SoftHSM2 slows down as objects pile up
  // on the token, so figures from a reused profile would depend on how often it ran before.
  note(`removing the ${PROFILE} profile's data from earlier runs`);
  await runStack('down', PROFILE, PORT_OFFSET);
  rmSync(join(REPO_ROOT, '.data', PROFILE), { recursive: true, force: true });

  note(`bringing up the ${PROFILE} stack (port offset ${PORT_OFFSET})`);
  if ((await runStack('up', PROFILE, PORT_OFFSET)) !== 0) {
    note(`FAILED: the ${PROFILE} stack did not come up; see the lines above`);
    await stopEverything();
    return 1;
  }

  try {
    const descriptor = readStackDescriptor(PROFILE);
    services = await startServices({
      descriptor,
      healthPortBase: HEALTH_PORT_BASE,
      logDir: join(REPO_ROOT, '.data', PROFILE, 'logs', 'bench'),
      extraEnvironment: { policy: { KEYTOWER_POLICY_ALLOW: `${BENCH_ACTOR}=create` } },
    });
    note(`services ready: ${services.processes.map((service) => service.name).join(', ')}`);

    const results = await measure(descriptor, services, mode, command);
    console.log(`\n${formatConsoleTable(results)}\n`);
    appendToBenchmarksPage(BENCHMARKS_PAGE, results);
    note(
      `appended the results to docs/BENCHMARKS.md (${((performance.now() - started) / 1000).toFixed(0)} s in all)`,
    );
    return 0;
  } catch (error) {
    note(`FAILED: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await stopEverything();
  }
}

process.exitCode = await main();
