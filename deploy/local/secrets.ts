/** Random secrets (NATS passwords, token PINs) kept in `.data/<profile>/secrets/` with mode 0600. */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Reads a secret file, or creates it with `bytes` random bytes (base64url) when it does not exist. */
export function readOrCreateSecret(secretsDir: string, fileName: string, bytes = 24): string {
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  chmodSync(secretsDir, 0o700);

  const file = join(secretsDir, fileName);
  if (existsSync(file)) {
    const value = readFileSync(file, 'utf8').trim();
    if (value.length > 0) {
      chmodSync(file, 0o600);
      return value;
    }
  }

  // The leading letter matters: nats-server parses a password substituted from the environment
  // as a config value, and a value starting with "-" (one base64url character in 64) is read as a
  // negative number and rejected ("Expected a digit"), so the server does not start.
  const value = `k${randomBytes(bytes).toString('base64url')}`;
  writeFileSync(file, value, { mode: 0o600 });
  return value;
}

/** Reads an existing secret file, failing with its path when it is missing or empty. */
export function readSecret(file: string): string {
  const value = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  if (value.length === 0) {
    throw new Error(`secret file ${file} is missing or empty`);
  }
  return value;
}
