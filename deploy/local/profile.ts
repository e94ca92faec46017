/**
 * Profiles and ports. A profile is a named stack with its own data folder and a port offset
 * added to every base port, so several stacks (for example `dev` and `test`) run side by side.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Port offsets of the profiles that need no `--port-offset`. */
export const KNOWN_PROFILES: Readonly<Record<string, number>> = { dev: 0, test: 10000 };

const BASE_PORTS = {
  nats: 4222,
  natsMonitor: 8222,
  clickhouseHttp: 8123,
  clickhouseTcp: 9000,
  clickhouseInterserver: 9009,
  kafka: 9092,
  kafkaController: 9093,
} as const;

export type PortName = keyof typeof BASE_PORTS;

export interface Profile {
  name: string;
  portOffset: number;
  ports: Record<PortName, number>;
  /** `.data/<profile>/` in the repository. */
  dataDir: string;
  secretsDir: string;
  logsDir: string;
  runDir: string;
  descriptorFile: string;
}

const PROFILE_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const MAX_OFFSET = 65535 - Math.max(...Object.values(BASE_PORTS));

/**
 * Resolves a profile name and optional port offset. Known profiles have a fixed offset; an explicit
 * offset that disagrees with it is rejected so `dev` and `test` always keep their documented ports.
 */
export function resolveProfile(name: string, portOffset?: number): Profile {
  if (!PROFILE_NAME.test(name)) {
    throw new Error(
      `invalid profile name "${name}": use lower-case letters, digits and dashes, starting with a letter`,
    );
  }

  const knownOffset = KNOWN_PROFILES[name];
  if (knownOffset !== undefined && portOffset !== undefined && portOffset !== knownOffset) {
    throw new Error(
      `profile "${name}" always uses port offset ${knownOffset}, received --port-offset ${portOffset}`,
    );
  }
  const offset = knownOffset ?? portOffset;
  if (offset === undefined) {
    throw new Error(
      `profile "${name}" is not one of ${Object.keys(KNOWN_PROFILES).join(', ')}: pass --port-offset N`,
    );
  }
  if (!Number.isInteger(offset) || offset < 0 || offset > MAX_OFFSET) {
    throw new Error(`invalid port offset ${offset}: expected an integer from 0 to ${MAX_OFFSET}`);
  }

  const ports = Object.fromEntries(
    Object.entries(BASE_PORTS).map(([portName, base]) => [portName, base + offset]),
  ) as Record<PortName, number>;
  const dataDir = join(REPO_ROOT, '.data', name);

  return {
    name,
    portOffset: offset,
    ports,
    dataDir,
    secretsDir: join(dataDir, 'secrets'),
    logsDir: join(dataDir, 'logs'),
    runDir: join(dataDir, 'run'),
    descriptorFile: join(dataDir, 'stack.json'),
  };
}
