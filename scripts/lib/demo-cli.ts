/**
 * Runs the real `keytower` CLI (`services/cli/src/main.ts`) as a child process, the way a person
 * would from a shell, and parses its `--json` output.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './repo.ts';

const CLI_ENTRY = join(REPO_ROOT, 'services', 'cli', 'src', 'main.ts');
/** Time the child process gets beyond the CLI's own `--timeout`, for start-up and connecting. */
const PROCESS_MARGIN_MS = 30_000;

/** Output of one CLI run. */
export interface CliRun {
  /** The command line as a person would type it, for the demo's transcript. */
  commandLine: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Standard output parsed as JSON; `undefined` when it is not JSON. */
  json: unknown;
}

/** Quotes an argument for display only when it needs it. */
function shellWord(argument: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(argument)
    ? argument
    : `'${argument.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs `keytower --stack <stack> --json <args…>` and resolves with its exit code and output. It
 * never rejects for a non-zero exit code, because a rejected command is an outcome to report.
 */
export function runCli(
  stack: string,
  args: readonly string[],
  timeoutSeconds = 30,
): Promise<CliRun> {
  const fullArgs = ['--stack', stack, '--json', ...args];
  const commandLine = `keytower ${fullArgs.map(shellWord).join(' ')}`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI_ENTRY, ...fullArgs],
      {
        cwd: REPO_ROOT,
        timeout: timeoutSeconds * 1000 + PROCESS_MARGIN_MS,
        maxBuffer: 16 * 2 ** 20,
      },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code !== 'number') {
          reject(new Error(`${commandLine} could not run: ${error.message}`, { cause: error }));
          return;
        }
        let json: unknown;
        try {
          json = JSON.parse(stdout);
        } catch {
          json = undefined;
        }
        resolve({
          commandLine,
          exitCode: error === null ? 0 : (error.code as number),
          stdout,
          stderr,
          json,
        });
      },
    );
  });
}
