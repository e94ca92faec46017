import type { Bus } from '@keytower/bus';
import { CliError, EXIT_CODES } from './errors.ts';
import { type CliRole, createCliLogger, openBus, resolveConnection } from './connection.ts';

/** Options every subcommand accepts (declared on the root program). */
export interface GlobalOptions {
  stack?: string;
  json?: boolean;
}

/**
 * Runs `work` with a bus connection as the given role and always closes the connection.
 * Errors from resolving or connecting become exit code 5 with the reason.
 */
export async function withBus<T>(
  options: GlobalOptions,
  role: CliRole,
  work: (bus: Bus) => Promise<T>,
): Promise<T> {
  const logger = createCliLogger();
  let bus: Bus;
  try {
    bus = await openBus(resolveConnection(options.stack, role), logger);
  } catch (error) {
    if (error instanceof CliError) {
      throw error;
    }
    throw new CliError(
      error instanceof Error ? error.message : String(error),
      EXIT_CODES.unavailable,
      {
        cause: error,
      },
    );
  }
  try {
    return await work(bus);
  } finally {
    await bus.close().catch(() => undefined);
  }
}
