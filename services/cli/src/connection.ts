import { commonSettingsSchema, loadConfig, readStackDescriptor } from '@keytower/config';
import { connectBus, type Bus } from '@keytower/bus';
import { createLogger, type Logger } from '@keytower/telemetry';

/** NATS endpoint and credentials the CLI connects with. */
export interface ConnectionSettings {
  servers: string;
  user: string;
  password: string;
  /** Origin of the settings for error messages: a stack descriptor or the environment. */
  origin: string;
}

/** The NATS user the CLI connects as: `cli` for key commands, `admin` for provisioning. */
export type CliRole = 'cli' | 'admin';

const connectionSchema = commonSettingsSchema.pick({
  natsUrl: true,
  natsUser: true,
  natsPassword: true,
});

/**
 * Resolves the connection settings. `--stack <profile>` reads `.data/<profile>/stack.json` and
 * picks the role's user. Without it the `KEYTOWER_NATS_*` variables are used. When even
 * `KEYTOWER_NATS_URL` is unset but `KEYTOWER_STACK_FILE` is set, that descriptor is read.
 */
export function resolveConnection(
  stack: string | undefined,
  role: CliRole,
  env: Record<string, string | undefined> = process.env,
): ConnectionSettings {
  const useDescriptor =
    stack !== undefined ||
    (env.KEYTOWER_NATS_URL === undefined && env.KEYTOWER_STACK_FILE !== undefined);
  if (useDescriptor) {
    const descriptor = readStackDescriptor(stack ?? env.KEYTOWER_STACK_FILE);
    const credential = descriptor.nats.users[role];
    if (credential === undefined) {
      throw new Error(
        `the stack descriptor of profile ${descriptor.profile} has no NATS user "${role}"`,
      );
    }
    return {
      servers: descriptor.nats.url,
      user: credential.user,
      password: credential.password,
      origin: `stack profile ${descriptor.profile}`,
    };
  }

  let settings;
  try {
    settings = loadConfig(connectionSchema, {
      service: 'keytower',
      env: { KEYTOWER_NATS_USER: role, ...env },
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `${reason}. Pass --stack dev to use the local stack that \`npm start\` runs (or --stack <profile> for another one), or set KEYTOWER_NATS_URL and KEYTOWER_NATS_PASSWORD or KEYTOWER_NATS_PASSWORD_FILE`,
      { cause: error },
    );
  }
  return {
    servers: settings.natsUrl,
    user: settings.natsUser,
    password: settings.natsPassword,
    origin: 'KEYTOWER_NATS_* variables',
  };
}

/** Logger for the CLI: warnings and errors only, on standard error, so stdout stays parseable. */
export function createCliLogger(): Logger {
  const level = process.env.KEYTOWER_LOG_LEVEL === 'debug' ? 'debug' : 'warn';
  return createLogger({ service: 'keytower-cli', level, destination: process.stderr });
}

/** Connects to NATS with the resolved settings. Fails at once when no server accepts the connection. */
export async function openBus(settings: ConnectionSettings, logger: Logger): Promise<Bus> {
  try {
    return await connectBus({
      servers: settings.servers,
      user: settings.user,
      password: settings.password,
      name: 'keytower-cli',
      logger,
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `could not connect to NATS at ${settings.servers} as ${settings.user} (${settings.origin}): ${reason}`,
      { cause: error },
    );
  }
}
