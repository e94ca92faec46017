/** One invalid setting: where it came from, what was expected and what was received. */
export interface ConfigIssue {
  /** Environment variable name, or `<key> in <file>` for a value from the config file. */
  source: string;
  expected: string;
  /** The received value, JSON-encoded, or `<redacted>` for a secret. */
  received: string;
  message: string;
}

/**
 * Raised when a service's settings are missing, malformed, unknown or contradictory. The
 * message lists every issue, one per line, and never contains a secret's value.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'invalid-config';
  readonly issues: ConfigIssue[];

  constructor(service: string, issues: ConfigIssue[], options?: ErrorOptions) {
    const lines = issues.map((issue) => issue.message);
    super(`invalid configuration for ${service}: ${lines.join('; ')}`, options);
    this.issues = issues;
  }
}

export function isConfigError(error: unknown): error is ConfigError {
  return error instanceof ConfigError;
}
