/** Runs `deploy/local/stack.ts` from the root scripts, with its output shown as it comes. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './repo.ts';

const STACK_SCRIPT = join(REPO_ROOT, 'deploy', 'local', 'stack.ts');

/**
 * Runs one stack command and resolves with its exit code. `portOffset` is needed only for profiles
 * other than `dev` and `test`, for example the benchmark's own `bench` profile.
 */
export function runStack(command: 'up' | 'status' | 'down', profile: string, portOffset?: number): Promise<number> {
  const offsetArgs = portOffset === undefined ? [] : ['--port-offset', String(portOffset)];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [STACK_SCRIPT, command, '--profile', profile, ...offsetArgs], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
