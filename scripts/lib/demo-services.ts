/**
 * Starts keytower services as child processes for the demo, the benchmark and the end-to-end
 * tests, waits until each returns 200 on `/readyz`, and stops them by pid. Unlike `npm start`, the output
 * of each service goes to a log file, so the person watching the demo sees only its steps, and a
 * service that exits is reported instead of restarted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StackDescriptor } from '@keytower/config';
import { REPO_ROOT } from './repo.ts';
import {
  SERVICES,
  serviceEnvironment,
  type ServiceDefinition,
  type ServiceName,
} from './services.ts';

const DEFAULT_READY_TIMEOUT_MS = 60_000;
const STOP_GRACE_MS = 10_000;
const LOG_TAIL_LINES = 20;

/** Options of {@link startServices}. */
export interface StartServicesOptions {
  descriptor: StackDescriptor;
  /** Services to start, in this order; default every service of `scripts/lib/services.ts`. */
  names?: readonly ServiceName[];
  /**
   * Health port of the first service; the others follow it. `undefined` keeps the ports `npm start`
   * uses, so only pass it where `npm start` may run at the same time (the test and bench stacks).
   */
  healthPortBase?: number;
  /** Folder for one `<service>.log` file per service; created when missing. */
  logDir: string;
  /** Settings added to one service's environment, for example `KEYTOWER_POLICY_ALLOW` for policy. */
  extraEnvironment?: Partial<Record<ServiceName, Record<string, string>>>;
  /** Time each service has to return 200 on `/readyz`, in milliseconds; default 60 s. */
  readyTimeoutMs?: number;
}

/** One service process started by {@link startServices}. */
export interface ServiceProcess {
  readonly name: ServiceName;
  readonly healthPort: number;
  readonly logFile: string;
  /** Process id while it runs, `undefined` once it exited. */
  readonly pid: number | undefined;
}

/** The services started by {@link startServices}. */
export interface RunningServices {
  readonly processes: readonly ServiceProcess[];
  /** Stops one service with SIGTERM (SIGKILL after 10 s) and waits for it to exit. */
  stopService(name: ServiceName): Promise<void>;
  /** Starts a service stopped by {@link RunningServices.stopService} again and waits until it is ready. */
  restartService(name: ServiceName): Promise<void>;
  /** Stops every service, in the reverse order of starting, and waits for each to exit. */
  stopAll(): Promise<void>;
}

class ManagedService implements ServiceProcess {
  readonly name: ServiceName;
  readonly healthPort: number;
  readonly logFile: string;
  readonly #environment: Record<string, string>;
  readonly #entry: string;
  #child: ChildProcess | undefined;
  #exited: Promise<number | null> = Promise.resolve(null);
  #exitCode: number | null | undefined;

  constructor(definition: ServiceDefinition, environment: Record<string, string>, logFile: string) {
    this.name = definition.name;
    this.healthPort = definition.healthPort;
    this.logFile = logFile;
    this.#environment = environment;
    this.#entry = join(REPO_ROOT, definition.entry);
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  launch(): void {
    if (this.#child !== undefined) {
      throw new Error(`${this.name} start failed: it already runs with pid ${this.#child.pid}`);
    }
    // Appending keeps the output of an earlier run of the same service, for example before a restart.
    const log = openSync(this.logFile, 'a');
    const child = spawn(process.execPath, [this.#entry], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...this.#environment },
      stdio: ['ignore', log, log],
    });
    closeSync(log);

    this.#child = child;
    this.#exitCode = undefined;
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#child = undefined;
        this.#exitCode = code ?? (signal === null ? null : 128);
        resolve(this.#exitCode);
      });
    });
  }

  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.#exitCode !== undefined) {
        throw new Error(
          `${this.name} exited with code ${this.#exitCode} before it was ready; last lines of ${this.logFile}:\n${this.logTail()}`,
        );
      }
      if (await isReady(this.healthPort)) {
        return;
      }
      await sleep(200);
    }
    throw new Error(
      `${this.name} was not ready on http://127.0.0.1:${this.healthPort}/readyz within ${timeoutMs / 1000} s; last lines of ${this.logFile}:\n${this.logTail()}`,
    );
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined) {
      return;
    }
    child.kill('SIGTERM');
    const killTimer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.#exited;
    clearTimeout(killTimer);
  }

  logTail(): string {
    if (!existsSync(this.logFile)) {
      return '(no output)';
    }
    const lines = readFileSync(this.logFile, 'utf8').trimEnd().split('\n');
    return lines.slice(-LOG_TAIL_LINES).join('\n');
  }
}

async function isListening(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/healthz`, {
      signal: AbortSignal.timeout(1000),
    });
    await response.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

async function isReady(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`, {
      signal: AbortSignal.timeout(2000),
    });
    await response.body?.cancel();
    return response.status === 200;
  } catch {
    return false;
  }
}

/**
 * Starts the given services one after another with the settings from the stack descriptor and
 * resolves once every one returns 200 on `/readyz`. When one fails to become ready, the ones already
 * started are stopped and the error names the service and shows the end of its log.
 */
export async function startServices(options: StartServicesOptions): Promise<RunningServices> {
  const names = options.names ?? SERVICES.map((service) => service.name);
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  mkdirSync(options.logDir, { recursive: true });

  const managed: ManagedService[] = names.map((name, index) => {
    const base = SERVICES.find((service) => service.name === name);
    if (base === undefined) {
      throw new Error(
        `unknown service "${name}": expected one of ${SERVICES.map((s) => s.name).join(', ')}`,
      );
    }
    const definition: ServiceDefinition =
      options.healthPortBase === undefined
        ? base
        : { ...base, healthPort: options.healthPortBase + index };
    if (!existsSync(join(REPO_ROOT, definition.entry))) {
      throw new Error(`${name} cannot start: ${definition.entry} does not exist`);
    }
    const environment = {
      ...serviceEnvironment(definition, options.descriptor),
      ...options.extraEnvironment?.[name],
    };
    return new ManagedService(definition, environment, join(options.logDir, `${name}.log`));
  });

  const stopAll = async (): Promise<void> => {
    for (const service of [...managed].reverse()) {
      await service.stop();
    }
  };

  try {
    for (const service of managed) {
      // A service already listening on this port would pass the readiness check for ours.
      if (await isListening(service.healthPort)) {
        throw new Error(
          `${service.name} cannot start: health port ${service.healthPort} is already in use (does \`npm start\` or another run use this stack?)`,
        );
      }
      service.launch();
      await service.waitReady(readyTimeoutMs);
    }
  } catch (error) {
    await stopAll();
    throw error;
  }

  const find = (name: ServiceName): ManagedService => {
    const service = managed.find((entry) => entry.name === name);
    if (service === undefined) {
      throw new Error(`service ${name} was not started by this runner`);
    }
    return service;
  };

  return {
    processes: managed,
    stopService: (name) => find(name).stop(),
    restartService: async (name) => {
      const service = find(name);
      service.launch();
      await service.waitReady(readyTimeoutMs);
    },
    stopAll,
  };
}
