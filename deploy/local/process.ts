/**
 * Process helpers for the local stack: start a server detached with its pid in a pid file, find
 * it again by that pid file, and stop it. Servers are never looked up or stopped by name, because
 * other stacks on the same machine run the same programs.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ManagedProcess {
  pidFile: string;
  /**
   * A string the process's command line must contain, such as its private config path. It guards
   * against a stale pid file whose pid the kernel has since given to an unrelated process.
   */
  commandLineMarker: string;
}

/** Returns the pid recorded in the pid file when that process is alive and is the expected one. */
export function runningPid(managed: ManagedProcess): number | undefined {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(managed.pidFile, 'utf8').trim(), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) {
    return undefined;
  }

  let commandLine: string;
  try {
    commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    // A zombie has an empty command line: it has exited and only waits to be reaped.
  } catch {
    return undefined;
  }
  return commandLine.includes(managed.commandLineMarker) ? pid : undefined;
}

export interface StartOptions {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd: string;
  logFile: string;
  pidFile: string;
}

/** Starts a server in its own process group, detached from this process, output appended to a log file. */
export function startDetached(options: StartOptions): number {
  mkdirSync(dirname(options.logFile), { recursive: true });
  mkdirSync(dirname(options.pidFile), { recursive: true });

  const logFd = openSync(options.logFile, 'a');
  try {
    const child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: ['ignore', logFd, logFd],
    });
    if (child.pid === undefined) {
      throw new Error(`failed to start ${options.command}: no pid returned`);
    }
    child.unref();
    writeFileSync(options.pidFile, `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(logFd);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie passes the signal 0 check but has exited, so it counts as gone.
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    return state !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Stops the process of a pid file: SIGTERM, wait up to `graceMs`, then SIGKILL. Returns the pid
 * that was stopped, or undefined when nothing was running. Removes the pid file in both cases.
 */
export async function stopByPidFile(
  managed: ManagedProcess,
  graceMs: number,
): Promise<number | undefined> {
  const pid = runningPid(managed);
  if (pid === undefined) {
    rmSync(managed.pidFile, { force: true });
    return undefined;
  }

  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) {
    await sleep(100);
  }
  if (isAlive(pid)) {
    process.kill(pid, 'SIGKILL');
    while (isAlive(pid)) {
      await sleep(50);
    }
  }

  rmSync(managed.pidFile, { force: true });
  return pid;
}

/** Polls `check` until it returns true or the timeout passes; fails with `description` on timeout. */
export async function waitUntil(
  description: string,
  check: () => Promise<boolean>,
  options: { timeoutMs: number; intervalMs?: number; whileAlive?: ManagedProcess },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await check()) {
      return;
    }
    if (options.whileAlive && runningPid(options.whileAlive) === undefined) {
      throw new Error(`${description}: the process exited before it became ready`);
    }
    if (Date.now() >= deadline) {
      throw new Error(`${description}: timed out after ${options.timeoutMs} ms`);
    }
    await sleep(options.intervalMs ?? 250);
  }
}

/** Returns true when something accepts TCP connections on 127.0.0.1:port. */
export function isPortOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
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

/** Performs a GET on a loopback URL and returns the status and body, or undefined when unreachable. */
export async function httpGet(
  url: string,
  timeoutMs = 2000,
): Promise<{ status: number; body: string } | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: response.status, body: await response.text() };
  } catch {
    return undefined;
  }
}

/** Fails with the port numbers when another program already listens on any of them. */
export async function assertPortsFree(server: string, ports: readonly number[]): Promise<void> {
  const busy: number[] = [];
  for (const port of ports) {
    if (await isPortOpen(port)) {
      busy.push(port);
    }
  }
  if (busy.length > 0) {
    throw new Error(
      `cannot start ${server}: port ${busy.join(', ')} on 127.0.0.1 is already in use by another program ` +
        '(another profile or a system service); stop it or choose another --port-offset',
    );
  }
}
