/** Exit codes of the keytower command. */
export const EXIT_CODES = {
  /** The command succeeded. */
  success: 0,
  /** Policy rejected the command, or a read found nothing. */
  rejected: 1,
  /** Invalid input, or a command id that another command owns: nothing new was stored. */
  usage: 2,
  /** The command was admitted but failed or was dead-lettered. */
  failed: 3,
  /** No terminal status arrived within `--timeout`. */
  timeout: 4,
  /** The CLI could not reach NATS or read what it needed. */
  unavailable: 5,
} as const;

export type ExitCode = (typeof EXIT_CODES)[keyof typeof EXIT_CODES];

/** An error the CLI reports as one line on standard error, ending with its exit code. */
export class CliError extends Error {
  readonly exitCode: ExitCode;

  constructor(message: string, exitCode: ExitCode, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** Invalid command-line input, or a command id that another command owns: exit code 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT_CODES.usage);
    this.name = 'UsageError';
  }
}
