/**
 * `npm start`: brings up the `dev` stack and runs every keytower service built so far in the
 * foreground, each output line prefixed with the service name. A service that exits unexpectedly
 * is restarted with backoff. Ctrl-C (SIGINT) or SIGTERM stops the services, then the stack.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readStackDescriptor, type StackDescriptor } from '@keytower/config';
import { requireNode24 } from './lib/node-version.ts';
import { pipeWithPrefix } from './lib/prefix-lines.ts';
import { REPO_ROOT } from './lib/repo.ts';
import {
  localAllowList,
  SERVICES,
  serviceEnvironment,
  type ServiceDefinition,
} from './lib/services.ts';
import { runStack } from './lib/stack-command.ts';

requireNode24();

const PROFILE = 'dev';
const STOP_GRACE_MS = 10_000;
const FIRST_RESTART_DELAY_MS = 1000;
const MAX_RESTART_DELAY_MS = 30_000;
/** A service that ran at least this long before exiting restarts after the first delay again. */
const STABLE_RUN_MS = 60_000;

interface RunningService {
  definition: ServiceDefinition;
  child: ChildProcess | undefined;
  restartDelayMs: number;
  startedAt: number;
  exited: Promise<void>;
}

let stopping = false;
const running: RunningService[] = [];

function note(message: string): void {
  console.log(`[start] ${message}`);
}

function launch(service: RunningService, descriptor: StackDescriptor): void {
  const { definition } = service;
  const child = spawn(process.execPath, [join(REPO_ROOT, definition.entry)], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...serviceEnvironment(definition, descriptor) },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so a Ctrl-C reaches only this script, which stops services in order.
    detached: true,
  });
  const prefix = `[${definition.name}]`;
  if (child.stdout) pipeWithPrefix(child.stdout, process.stdout, prefix);
  if (child.stderr) pipeWithPrefix(child.stderr, process.stderr, prefix);

  service.child = child;
  service.startedAt = Date.now();
  service.exited = new Promise((resolve) => {
    child.once('error', (error) => {
      note(`${definition.name} failed to start: ${error.message}`);
    });
    child.once('close', (code, signal) => {
      service.child = undefined;
      resolve();
      if (stopping) {
        return;
      }
      scheduleRestart(service, descriptor, signal ? `signal ${signal}` : `exit code ${code}`);
    });
  });
  note(`${definition.name} started (pid ${child.pid}, health port ${definition.healthPort})`);
}

function scheduleRestart(
  service: RunningService,
  descriptor: StackDescriptor,
  reason: string,
): void {
  if (Date.now() - service.startedAt >= STABLE_RUN_MS) {
    service.restartDelayMs = FIRST_RESTART_DELAY_MS;
  }
  const delay = service.restartDelayMs;
  service.restartDelayMs = Math.min(delay * 2, MAX_RESTART_DELAY_MS);
  note(
    `${service.definition.name} exited unexpectedly (${reason}): restarting in ${delay / 1000} s`,
  );

  setTimeout(() => {
    if (!stopping) {
      launch(service, descriptor);
    }
  }, delay);
}

async function stopServices(): Promise<void> {
  const alive = running.filter((service) => service.child !== undefined);
  for (const service of alive) {
    note(`stopping ${service.definition.name} (pid ${service.child?.pid})`);
    service.child?.kill('SIGTERM');
  }

  const allExited = Promise.all(alive.map((service) => service.exited));
  const timedOut = await Promise.race([
    allExited.then(() => false),
    sleep(STOP_GRACE_MS).then(() => true),
  ]);
  if (timedOut) {
    for (const service of alive.filter((entry) => entry.child !== undefined)) {
      note(`${service.definition.name} did not stop within ${STOP_GRACE_MS / 1000} s: killing it`);
      service.child?.kill('SIGKILL');
    }
    await allExited;
  }
}

async function shutdown(signal: string): Promise<void> {
  if (stopping) {
    note(`${signal} received again: still stopping`);
    return;
  }
  stopping = true;
  note(`${signal} received: stopping services, then the ${PROFILE} stack`);
  await stopServices();
  const code = await runStack('down', PROFILE);
  process.exit(code === 0 ? 0 : 1);
}

async function main(): Promise<void> {
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  const upCode = await runStack('up', PROFILE);
  if (stopping) {
    // A signal arrived during start-up, and its handler takes the stack down.
    return;
  }
  if (upCode !== 0) {
    note(`the ${PROFILE} stack did not come up (exit code ${upCode}); see the lines above`);
    await runStack('down', PROFILE);
    process.exit(1);
  }

  const descriptor = readStackDescriptor(PROFILE);
  for (const definition of SERVICES) {
    if (!existsSync(join(REPO_ROOT, definition.entry))) {
      note(`skipped ${definition.name}: ${definition.entry} does not exist yet`);
      continue;
    }
    const service: RunningService = {
      definition,
      child: undefined,
      restartDelayMs: FIRST_RESTART_DELAY_MS,
      startedAt: 0,
      exited: Promise.resolve(),
    };
    running.push(service);
    launch(service, descriptor);
  }

  note(`running ${running.length} service(s) on the ${PROFILE} stack; press Ctrl-C to stop`);
  note(`policy allow-list: ${localAllowList()} (set KEYTOWER_POLICY_ALLOW to change it)`);
  note(
    `try: npm run keytower -- keys create --stack ${PROFILE} --purpose encrypt --algorithm AES_256 --label first-key`,
  );
  // Keeps the process alive while no service runs; the signal handlers end it.
  setInterval(() => undefined, 60_000);
}

await main();
