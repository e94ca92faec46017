/**
 * SoftHSM2 token: a `softhsm2.conf` in the data folder and one token labelled `keytower`,
 * initialised once with random SO and user PINs. SoftHSM2 is a library, so there is no process.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runChecked } from './commands.ts';
import type { Profile } from './profile.ts';
import { readOrCreateSecret } from './secrets.ts';
import type { ServerStatus, StackServer } from './server.ts';

export const HSM_TOKEN_LABEL = 'keytower';

export function softhsmConfFile(profile: Profile): string {
  return join(profile.dataDir, 'softhsm', 'softhsm2.conf');
}

export function hsmPinFile(profile: Profile): string {
  return join(profile.secretsDir, 'hsm.pin');
}

export function hsmSoPinFile(profile: Profile): string {
  return join(profile.secretsDir, 'hsm-so.pin');
}

function tokenDir(profile: Profile): string {
  return join(profile.dataDir, 'softhsm', 'tokens');
}

function softhsmEnv(profile: Profile): NodeJS.ProcessEnv {
  return { ...process.env, SOFTHSM2_CONF: softhsmConfFile(profile) };
}

/** Returns the labels of the initialised tokens, read from `softhsm2-util --show-slots`. */
async function tokenLabels(profile: Profile): Promise<string[]> {
  if (!existsSync(softhsmConfFile(profile))) {
    return [];
  }
  const result = await runChecked('softhsm2-util', ['--show-slots'], { env: softhsmEnv(profile) });
  return [...result.stdout.matchAll(/^\s*Label:\s*(.*?)\s*$/gm)].map((match) => match[1] as string);
}

export const softhsm: StackServer = {
  name: 'softhsm',

  async install() {
    // Installed with the other Debian packages by ensureAptPackages.
  },

  async up(profile, report) {
    mkdirSync(tokenDir(profile), { recursive: true });
    const conf = [
      '# Written by deploy/local/stack.ts; changes are overwritten on the next `up`.',
      `directories.tokendir = ${tokenDir(profile)}`,
      'objectstore.backend = file',
      'log.level = ERROR',
      'slots.removable = false',
      '',
    ].join('\n');
    const confFile = softhsmConfFile(profile);
    if (!existsSync(confFile) || readFileSync(confFile, 'utf8') !== conf) {
      writeFileSync(confFile, conf);
    }

    if ((await tokenLabels(profile)).includes(HSM_TOKEN_LABEL)) {
      if (!existsSync(hsmPinFile(profile)) || !existsSync(hsmSoPinFile(profile))) {
        throw new Error(
          `SoftHSM2 token "${HSM_TOKEN_LABEL}" exists but its PIN files are missing from ${profile.secretsDir}: ` +
            `reset the profile with \`npm run stack -- down --profile ${profile.name}\` and delete ${profile.dataDir}`,
        );
      }
      return;
    }

    const soPin = readOrCreateSecret(profile.secretsDir, 'hsm-so.pin', 12);
    const pin = readOrCreateSecret(profile.secretsDir, 'hsm.pin', 12);
    // softhsm2-util takes PINs only as arguments; the process is short-lived and local to this machine.
    await runChecked(
      'softhsm2-util',
      ['--init-token', '--free', '--label', HSM_TOKEN_LABEL, '--so-pin', soPin, '--pin', pin],
      { env: softhsmEnv(profile) },
    );
    report.step(`SoftHSM2 token "${HSM_TOKEN_LABEL}" initialised`);
  },

  async status(profile) {
    const present = (await tokenLabels(profile).catch((): string[] => [])).includes(
      HSM_TOKEN_LABEL,
    );
    return {
      name: 'softhsm',
      pid: undefined,
      ports: [],
      running: present,
      healthy: present,
      detail: present ? `token "${HSM_TOKEN_LABEL}" present` : `token "${HSM_TOKEN_LABEL}" missing`,
    } satisfies ServerStatus;
  },

  async down() {
    // A token is files on disk; it stays until the profile's data folder is deleted.
  },
};
