/** Provisions the JetStream topology (streams, consumers, buckets) through the keytower CLI. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand } from './commands.ts';
import { natsPasswordFile } from './nats.ts';
import { REPO_ROOT, type Profile } from './profile.ts';
import type { Reporter } from './reporter.ts';

const CLI_MAIN = join(REPO_ROOT, 'services', 'cli', 'src', 'main.ts');

/**
 * Runs `keytower admin provision` as the NATS admin user. Skips with a warning while the CLI or its
 * `admin provision` command does not exist yet; fails when the command exists and fails.
 */
export async function provisionTopology(profile: Profile, report: Reporter): Promise<void> {
  if (!existsSync(CLI_MAIN)) {
    report.warn(
      'services/cli/src/main.ts does not exist yet: skipped provisioning the JetStream topology',
    );
    return;
  }

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KEYTOWER_NATS_URL: `nats://127.0.0.1:${profile.ports.nats}`,
    KEYTOWER_NATS_USER: 'admin',
    KEYTOWER_NATS_PASSWORD_FILE: natsPasswordFile(profile, 'admin'),
  };
  delete env.KEYTOWER_NATS_PASSWORD;

  const help = await runCommand(process.execPath, [CLI_MAIN, 'admin', '--help'], {
    env,
    cwd: REPO_ROOT,
  });
  if (help.code !== 0 || !/\bprovision\b/.test(help.stdout)) {
    report.warn(
      'the keytower CLI has no `admin provision` command yet: skipped provisioning the JetStream topology',
    );
    return;
  }

  const result = await runCommand(process.execPath, [CLI_MAIN, 'admin', 'provision'], {
    env,
    cwd: REPO_ROOT,
  });
  if (result.code !== 0) {
    const output = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-20).join('\n');
    throw new Error(`keytower admin provision failed with exit code ${result.code}:\n${output}`);
  }
  report.step('JetStream topology provisioned');
}
