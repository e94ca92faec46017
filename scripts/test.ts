/**
 * `npm test`: type check, lint, bring up the `test` stack, run every package's tests through Nx
 * (cached, one at a time), then the end-to-end suites in `tests/` (uncached, serially), and always
 * take the stack down. Ends with the line `N passed, N failed` and exits non-zero on any failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { globSync } from 'node:fs';
import { join } from 'node:path';
import { requireNode24 } from './lib/node-version.ts';
import { REPO_ROOT } from './lib/repo.ts';
import { runStack } from './lib/stack-command.ts';
import { countTests, type TestCounts } from './lib/test-counts.ts';

requireNode24();

const PROFILE = 'test';
const BIN = join(REPO_ROOT, 'node_modules', '.bin');

interface StepResult {
  name: string;
  code: number;
  seconds: number;
}

let current: ChildProcess | undefined;
let interrupted = false;

/** Runs one step with its output shown and kept, so test counts can be read from it. */
function runStep(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<StepResult & { output: string }> {
  console.log(
    `\n[test] ${name}: ${[command, ...args].map((part) => part.replace(REPO_ROOT + '/', '')).join(' ')}`,
  );
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    current = child;
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      process.stdout.write(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      process.stderr.write(chunk);
    });
    child.once('error', (error) => {
      output += error.message;
      console.error(`[test] ${name} failed to start: ${error.message}`);
    });
    child.once('close', (code, signal) => {
      current = undefined;
      const seconds = (Date.now() - started) / 1000;
      resolve({ name, code: code ?? (signal ? 128 : 1), seconds, output });
    });
  });
}

function endToEndSuites(): string[] {
  return globSync('tests/**/*.test.ts', {
    cwd: REPO_ROOT,
    exclude: (path) => path.includes('node_modules'),
  }).sort();
}

async function main(): Promise<number> {
  process.on('SIGINT', () => {
    interrupted = true;
    current?.kill('SIGINT');
  });
  process.on('SIGTERM', () => {
    interrupted = true;
    current?.kill('SIGTERM');
  });

  const steps: StepResult[] = [];
  const totals: TestCounts = { passed: 0, failed: 0 };
  const stepsWithFailedTests = new Set<string>();
  const record = (step: StepResult): boolean => {
    steps.push(step);
    return step.code === 0;
  };
  const addStepCounts = (step: StepResult, counts: TestCounts): void => {
    totals.passed += counts.passed;
    totals.failed += counts.failed;
    if (counts.failed > 0) {
      stepsWithFailedTests.add(step.name);
    }
  };

  record(await runStep('type check', join(BIN, 'tsc'), ['-p', 'tsconfig.json']));
  // The Nx module-boundary lint rule reads the project graph, which a fresh clone has not built yet.
  if (!interrupted) record(await runStep('project graph', join(BIN, 'nx'), ['show', 'projects']));
  if (!interrupted) {
    record(await runStep('lint', join(BIN, 'eslint'), ['.', '--max-warnings', '0']));
  }

  const stackUp = interrupted
    ? undefined
    : await runStep('stack up', process.execPath, [
        'deploy/local/stack.ts',
        'up',
        '--profile',
        PROFILE,
      ]);
  try {
    if (stackUp !== undefined && record(stackUp) && !interrupted) {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        KEYTOWER_STACK_FILE: join(REPO_ROOT, '.data', PROFILE, 'stack.json'),
        NX_DAEMON: 'false',
        NX_NO_CLOUD: 'true',
        NX_TUI: 'false',
        NX_INTERACTIVE: 'false',
        CI: process.env.CI ?? 'true',
      };

      const packages = await runStep(
        'package tests',
        join(BIN, 'nx'),
        [
          'run-many',
          '-t',
          'test',
          '--parallel=1',
          '--outputStyle=static',
          // Package tests run against real servers, so CI runs them every time instead of replaying a cached pass.
          ...(process.env.CI ? ['--skip-nx-cache'] : []),
        ],
        env,
      );
      record(packages);
      addStepCounts(packages, countTests(packages.output));

      const suites = endToEndSuites();
      if (suites.length === 0) {
        console.log('\n[test] end-to-end suites: none found under tests/');
      } else if (!interrupted) {
        const endToEnd = await runStep(
          'end-to-end suites',
          process.execPath,
          ['--test', '--test-concurrency=1', '--test-reporter=spec', ...suites],
          env,
        );
        record(endToEnd);
        addStepCounts(endToEnd, countTests(endToEnd.output));
      }
    }
  } finally {
    const downStarted = Date.now();
    const downCode = await runStack('down', PROFILE);
    steps.push({ name: 'stack down', code: downCode, seconds: (Date.now() - downStarted) / 1000 });
  }

  console.log('\n[test] steps:');
  for (const step of steps) {
    console.log(
      `[test]   ${step.code === 0 ? 'ok    ' : 'FAILED'} ${step.name} (${step.seconds.toFixed(1)} s)`,
    );
  }
  const failedSteps = steps.filter((step) => step.code !== 0);
  // A step that failed without a failed test (type errors, lint, a stack that did not come up, a
  // runner that crashed) counts as one failure, so the summary line never reads "0 failed" on a failed run.
  totals.failed += failedSteps.filter((step) => !stepsWithFailedTests.has(step.name)).length;
  if (interrupted) {
    console.log('[test] interrupted');
  }
  console.log(`${totals.passed} passed, ${totals.failed} failed`);
  return failedSteps.length === 0 && totals.failed === 0 && !interrupted ? 0 : 1;
}

process.exitCode = await main();
