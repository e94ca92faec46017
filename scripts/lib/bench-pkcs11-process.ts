/**
 * Runs the direct PKCS#11 loop in a process of its own. SoftHSM 2.6.1 crashed the whole benchmark
 * process here (SIGSEGV) with eight sessions generating keys at once; in a child process such a
 * crash ends only the loop, and the benchmark reports it, stops its services and takes its stack
 * down.
 *
 * As a program: `node bench-pkcs11-process.ts <options JSON>` prints the result as JSON.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readStackDescriptor, type StackDescriptor } from '@keytower/config';
import { runDirectLoop, type DirectLoopResult } from './bench-pkcs11.ts';

interface ChildOptions {
  /** Stack profile whose descriptor the child reads. */
  profile: string;
  keys: number;
  concurrency: number;
  runId: string;
}

const THIS_FILE = fileURLToPath(import.meta.url);

/** Runs {@link runDirectLoop} in a child process and resolves with its result. */
export function runDirectLoopIsolated(
  descriptor: StackDescriptor,
  options: { keys: number; concurrency: number; runId: string },
): Promise<DirectLoopResult> {
  const childOptions: ChildOptions = { profile: descriptor.profile, ...options };
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [THIS_FILE, JSON.stringify(childOptions)],
      { maxBuffer: 2 ** 20 },
      (error, stdout, stderr) => {
        if (error !== null) {
          const ending =
            error.signal === null || error.signal === undefined
              ? `exit code ${String(error.code)}`
              : `signal ${error.signal}`;
          reject(
            new Error(
              `the direct PKCS#11 loop ended with ${ending}: ${stderr.trim() || '(no output)'}`,
              { cause: error },
            ),
          );
          return;
        }
        resolve(JSON.parse(stdout) as DirectLoopResult);
      },
    );
  });
}

if (process.argv[1] === THIS_FILE) {
  const options = JSON.parse(process.argv[2] ?? '{}') as ChildOptions;
  const result = await runDirectLoop(readStackDescriptor(options.profile), options);
  process.stdout.write(JSON.stringify(result));
}
