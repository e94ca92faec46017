/** Runs short external commands (installers, admin tools) and collects their output. */
import { spawn } from 'node:child_process';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion. Output is collected, not shown, unless `inherit` is set (used for
 * long installs, so the user sees progress). Never pass secrets as arguments: use `env` or a file.
 */
export function runCommand(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; inherit?: boolean; input?: string } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [
        options.input === undefined ? 'ignore' : 'pipe',
        options.inherit ? 'inherit' : 'pipe',
        options.inherit ? 'inherit' : 'pipe',
      ],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    if (options.input !== undefined) {
      child.stdin?.end(options.input);
    }
    child.once('error', (error) =>
      reject(new Error(`failed to run ${command}: ${error.message}`, { cause: error })),
    );
    child.once('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }),
    );
  });
}

/** Runs a command and throws with its output when it exits non-zero. */
export async function runChecked(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; inherit?: boolean; input?: string } = {},
): Promise<CommandResult> {
  const result = await runCommand(command, args, options);
  if (result.code !== 0) {
    const output = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-20).join('\n');
    throw new Error(
      `${command} ${args[0] ?? ''} failed with exit code ${result.code}${output ? `:\n${output}` : ''}`,
    );
  }
  return result;
}
