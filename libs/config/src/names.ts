/** Prefix of every keytower environment variable. */
export const ENV_PREFIX = 'KEYTOWER_';

/** Environment variable naming the optional JSON config file. */
export const CONFIG_FILE_VARIABLE = 'KEYTOWER_CONFIG_FILE';

/** Suffix of the variable that names a file holding a secret's value. */
export const SECRET_FILE_SUFFIX = '_FILE';

const SECRET_KEY_PATTERN = /(password|pin|secret|token)$/i;

/** Converts a camelCase settings key to its variable name: `natsUrl` → `KEYTOWER_NATS_URL`. */
export function variableName(key: string): string {
  const snake = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1_$2')
    .toUpperCase();
  return `${ENV_PREFIX}${snake}`;
}

/**
 * Tells whether a key names a secret. A secret's value is never printed, and it may be read
 * from a file named by `<VARIABLE>_FILE`.
 */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY_PATTERN.test(key);
}
