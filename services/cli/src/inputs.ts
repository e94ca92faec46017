import {
  ACTOR_PATTERN,
  KEY_ALGORITHMS,
  KEY_ID_PATTERN,
  KEY_PURPOSES,
  MAX_PENDING_WINDOW_SECONDS,
  MESSAGE_ID_PATTERN,
  PROVIDERS,
  ALGORITHMS_BY_PURPOSE,
  MIN_PENDING_WINDOW_SECONDS,
  type KeyAlgorithm,
  type KeyPurpose,
  type ProviderName,
} from '@keytower/contracts';
import { UsageError } from './errors.ts';

/**
 * Checks of command-line values. Each failure names the option and the values it accepts, so
 * a typo never reaches the bus: the CLI exits with code 2 before publishing anything.
 */

function oneOf<T extends string>(option: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`invalid ${option} "${value}": expected one of ${allowed.join(', ')}`);
  }
  return value as T;
}

export function parseProvider(value: string): ProviderName {
  return oneOf('--provider', value, PROVIDERS);
}

export function parsePurpose(value: string): KeyPurpose {
  return oneOf('--purpose', value, KEY_PURPOSES);
}

/** Checks the algorithm, and that it fits the purpose (AES for encrypt, EC or RSA for sign). */
export function parseAlgorithm(value: string, purpose: KeyPurpose): KeyAlgorithm {
  const algorithm = oneOf('--algorithm', value, KEY_ALGORITHMS);
  const allowed = ALGORITHMS_BY_PURPOSE[purpose];
  if (!allowed.includes(algorithm)) {
    throw new UsageError(
      `invalid --algorithm "${value}" for --purpose ${purpose}: expected one of ${allowed.join(', ')}`,
    );
  }
  return algorithm;
}

export function parseKeyId(value: string): string {
  if (!KEY_ID_PATTERN.test(value)) {
    throw new UsageError(
      `invalid key id "${value}": expected 1 to 64 letters, digits, "_" or "-", like kt_0123456789abcdef01234567`,
    );
  }
  return value;
}

/** Checks an id given to `commands show`: any message id, since other publishers may not use ULIDs. */
export function parseCommandId(value: string): string {
  if (!MESSAGE_ID_PATTERN.test(value)) {
    throw new UsageError(
      `invalid command id "${value}": expected 1 to 128 letters, digits, "_" or "-"`,
    );
  }
  return value;
}

/**
 * A ULID in its canonical form: 26 upper-case Crockford base32 characters (no I, L, O or U),
 * the first at most 7 because a ULID is 128 bits.
 */
const ULID_PATTERN = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

/** Checks a command id the CLI publishes or refers to (`--command-id`, `--retry-of`): a ULID. */
export function parseUlidOption(option: string, value: string): string {
  if (!ULID_PATTERN.test(value)) {
    throw new UsageError(
      `invalid ${option} "${value}": expected a ULID, 26 upper-case Crockford base32 characters like 01JF3Q7ZK8M4N2P5R6S7T8V9W0`,
    );
  }
  return value;
}

export function parseActor(value: string): string {
  if (!ACTOR_PATTERN.test(value)) {
    throw new UsageError(
      `invalid --actor "${value}": expected user:<name>, service:<name> or system:<name>`,
    );
  }
  return value;
}

function positiveInteger(option: string, value: string, unit: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new UsageError(
      `invalid ${option} "${value}": expected a positive whole number of ${unit}`,
    );
  }
  return Number(value);
}

export function parseVersion(value: string | undefined): number {
  if (value === undefined) {
    throw new UsageError(
      'missing --version <number>: name the key version, for example --version 1',
    );
  }
  return positiveInteger('--version', value, 'the key version');
}

/**
 * Parses the pending window and checks the upper bound only. The floor depends on the
 * deployment (7 days, or 1 second when policy runs with `KEYTOWER_TEST_PROFILE`), which the
 * CLI cannot see, so policy enforces it and the CLI maps its rejection to this option's name.
 */
export function parsePendingWindow(value: string): number {
  const seconds = positiveInteger('--pending-window', value, 'seconds');
  if (seconds > MAX_PENDING_WINDOW_SECONDS) {
    throw new UsageError(
      `invalid --pending-window ${seconds}: expected at most ${MAX_PENDING_WINDOW_SECONDS} seconds (30 days), and at least ${MIN_PENDING_WINDOW_SECONDS} (7 days) unless policy runs the test profile`,
    );
  }
  return seconds;
}

export function parseTimeout(value: string): number {
  return positiveInteger('--timeout', value, 'seconds');
}

export function parseCount(value: string): number {
  return positiveInteger('-n', value, 'records');
}

/** Parses repeated `--tag name=value` options into a tag map. */
export function parseTags(values: readonly string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const value of values) {
    const separator = value.indexOf('=');
    if (separator <= 0) {
      throw new UsageError(`invalid --tag "${value}": expected name=value`);
    }
    const name = value.slice(0, separator);
    if (!/^[A-Za-z0-9_.:/-]{1,64}$/.test(name)) {
      throw new UsageError(
        `invalid --tag name "${name}": expected 1 to 64 letters, digits or _.:/-`,
      );
    }
    if (Object.hasOwn(tags, name)) {
      throw new UsageError(
        `duplicate --tag "${name}": give each tag name once (received ${name}=${tags[name]} and ${value})`,
      );
    }
    tags[name] = value.slice(separator + 1);
  }
  return tags;
}

export function parseLabel(value: string): string {
  if (value.length < 1 || value.length > 128) {
    throw new UsageError(`invalid --label: expected 1 to 128 characters, received ${value.length}`);
  }
  return value;
}
