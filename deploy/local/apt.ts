/** Installs the Debian packages the stack needs, only those whose binaries are missing. */
import { existsSync } from 'node:fs';
import { runChecked } from './commands.ts';
import { APT_PACKAGES } from './versions.ts';
import type { Reporter } from './reporter.ts';

/**
 * Installs every missing package from `APT_PACKAGES` with one `apt-get update` first. Runs apt-get
 * directly as root, otherwise through sudo. Does nothing, and runs no apt command, when all are present.
 */
export async function ensureAptPackages(report: Reporter): Promise<void> {
  const missing = APT_PACKAGES.filter((pkg) => !existsSync(pkg.binary)).map((pkg) => pkg.name);
  if (missing.length === 0) {
    return;
  }

  report.step(`installing Debian packages: ${missing.join(' ')}`);
  const asRoot = process.getuid?.() === 0;
  const command = asRoot ? 'apt-get' : 'sudo';
  const prefix = asRoot ? [] : ['-n', 'apt-get'];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };

  await runChecked(command, [...prefix, 'update'], { env, inherit: true });
  await runChecked(command, [...prefix, 'install', '-y', '--no-install-recommends', ...missing], {
    env,
    inherit: true,
  });

  const stillMissing = APT_PACKAGES.filter(
    (pkg) => missing.includes(pkg.name) && !existsSync(pkg.binary),
  );
  if (stillMissing.length > 0) {
    throw new Error(
      `apt-get installed ${missing.join(' ')} but these binaries are still missing: ${stillMissing.map((pkg) => pkg.binary).join(', ')}`,
    );
  }
}
