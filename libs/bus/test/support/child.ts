import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildSettings } from './consumer-child.ts';

export interface ChildEvent {
  event: 'ready' | 'start' | 'done';
  pid: number;
  at: number;
  id?: string;
  deliveryCount?: number;
  isLastAttempt?: boolean;
}

export interface ConsumerChild {
  process: ChildProcess;
  events: ChildEvent[];
  /** Standard error of the child, for failure messages. */
  stderr: () => string;
  exited: Promise<void>;
}

const CHILD_SCRIPT = fileURLToPath(new URL('./consumer-child.ts', import.meta.url));

/** Starts a consumer replica in a child process and waits until it is consuming. */
export async function startConsumerChild(settings: ChildSettings): Promise<ConsumerChild> {
  const child = spawn(process.execPath, [CHILD_SCRIPT, JSON.stringify(settings)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const events: ChildEvent[] = [];
  let buffer = '';
  let errors = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop() ?? '';
    for (const line of lines) {
      if (line !== '') {
        events.push(JSON.parse(line) as ChildEvent);
      }
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const deadline = Date.now() + 10_000;
  while (!events.some((event) => event.event === 'ready')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`consumer child did not start:\n${errors}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { process: child, events, stderr: () => errors, exited };
}

/** Kills a child with SIGKILL, as a crash would, and waits for it to exit. */
export async function killChild(child: ConsumerChild): Promise<void> {
  if (child.process.exitCode === null && child.process.signalCode === null) {
    child.process.kill('SIGKILL');
  }
  await child.exited;
}
