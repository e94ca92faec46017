/**
 * `npm run demo`: brings up the `dev` stack and every keytower service like `npm start`. It runs the
 * demo scenario through the real `keytower` CLI: three HSM keys, a rotation, a disabled version, a
 * scheduled destruction and the inventory. Then it checks that every audit record of the scenario
 * reached ClickHouse and the Kafka SIEM topic and that the audit chain verifies, prints a summary,
 * and stops what it started. It exits 0 only when every step passed, otherwise 1 naming the step.
 */
import { join } from 'node:path';
import { readStackDescriptor } from '@keytower/config';
import { DEMO_ACTOR, runDemoScenario, type DemoScenarioReport } from './lib/demo-scenario.ts';
import { startServices, type RunningServices } from './lib/demo-services.ts';
import { hideKafkaJsTimeoutWarning } from './lib/demo-kafka.ts';
import { requireNode24 } from './lib/node-version.ts';
import { REPO_ROOT } from './lib/repo.ts';
import { localAllowList } from './lib/services.ts';
import { runStack } from './lib/stack-command.ts';

requireNode24();
hideKafkaJsTimeoutWarning();

const PROFILE = 'dev';
const LOG_DIR = join(REPO_ROOT, '.data', PROFILE, 'logs', 'demo');

function note(message: string): void {
  console.log(`[demo] ${message}`);
}

let services: RunningServices | undefined;
let stackStartedHere = false;
let stopping: Promise<void> | undefined;

/** Stops the services, then the stack if this run brought it up. Safe to call more than once. */
function stopEverything(): Promise<void> {
  stopping ??= (async () => {
    if (services !== undefined) {
      note('stopping the services');
      await services.stopAll();
    }
    if (stackStartedHere) {
      note(`taking the ${PROFILE} stack down`);
      const code = await runStack('down', PROFILE);
      if (code !== 0) {
        note(`stack down exited with code ${code}`);
      }
    } else {
      note(`the ${PROFILE} stack was already running before the demo: left it running`);
    }
  })();
  return stopping;
}

/** `npm start`'s allow-list plus the demo's actor, so the operator's own CLI commands work too. */
function demoAllowList(): string {
  const local = localAllowList();
  const entries = local.split(';').map((entry) => entry.trim());
  if (entries.some((entry) => entry.startsWith(`${DEMO_ACTOR}=`))) {
    return local;
  }
  return [...entries.filter((entry) => entry !== ''), `${DEMO_ACTOR}=*`].join(';');
}

function printSummary(report: DemoScenarioReport, totalSeconds: number): void {
  const lines = ['', '[demo] summary'];
  for (const step of report.steps) {
    lines.push(
      `  ${step.ok ? 'ok    ' : 'FAILED'} ${String(step.number).padStart(2)}. ${step.title} (${(step.elapsedMs / 1000).toFixed(1)} s)`,
    );
  }
  const keys = report.keys;
  lines.push(
    `  keys: encryption ${keys.encryption ?? '-'}, EC signing ${keys.ecSigning ?? '-'}, RSA signing ${keys.rsaSigning ?? '-'}`,
  );
  lines.push(`  commands: ${report.commandIds.length} sent through the keytower CLI`);
  if (report.audit !== undefined) {
    const audit = report.audit;
    lines.push(
      `  audit: ${audit.expectedRecordIds.length} records expected, ${audit.clickhouseRecords} in ClickHouse, ${audit.kafkaRecords} on Kafka (${audit.kafkaRepeats} repeats dropped), chain of ${audit.chainVerified} records verified`,
    );
  }
  lines.push(
    `  scenario ${(report.elapsedMs / 1000).toFixed(1)} s, whole demo ${totalSeconds.toFixed(1)} s`,
  );
  lines.push(
    report.ok
      ? '[demo] every step checked out'
      : `[demo] FAILED at step ${report.failedStep?.number ?? '?'}: ${report.failedStep?.title ?? 'the scenario did not finish'}`,
  );
  console.log(lines.join('\n'));
}

async function main(): Promise<number> {
  const started = performance.now();
  const interrupt = (signal: string): void => {
    note(`${signal} received: stopping`);
    void stopEverything().then(() => process.exit(130));
  };
  process.once('SIGINT', () => interrupt('SIGINT'));
  process.once('SIGTERM', () => interrupt('SIGTERM'));

  note(`checking whether the ${PROFILE} stack already runs`);
  stackStartedHere = (await runStack('status', PROFILE)) !== 0;
  note(`bringing up the ${PROFILE} stack`);
  const upCode = await runStack('up', PROFILE);
  if (upCode !== 0) {
    note(`FAILED: the ${PROFILE} stack did not come up (exit code ${upCode}); see the lines above`);
    stackStartedHere = true;
    await stopEverything();
    return 1;
  }

  try {
    const descriptor = readStackDescriptor(PROFILE);
    note(`starting the services (logs in ${LOG_DIR.replace(`${REPO_ROOT}/`, '')})`);
    services = await startServices({
      descriptor,
      logDir: LOG_DIR,
      extraEnvironment: { policy: { KEYTOWER_POLICY_ALLOW: demoAllowList() } },
    });
    for (const service of services.processes) {
      note(
        `  ${service.name.padEnd(16)} pid ${service.pid}, ready on http://127.0.0.1:${service.healthPort}/readyz`,
      );
    }

    note('running the scenario');
    const report = await runDemoScenario({ descriptor });
    printSummary(report, (performance.now() - started) / 1000);
    return report.ok ? 0 : 1;
  } catch (error) {
    note(`FAILED: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await stopEverything();
  }
}

process.exitCode = await main();
