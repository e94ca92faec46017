/**
 * NATS server with JetStream: built from source with `go install` into the tool cache, one config
 * per profile that includes the generated authorization file, and one random password per user.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { runChecked } from './commands.ts';
import {
  assertPortsFree,
  httpGet,
  runningPid,
  startDetached,
  stopByPidFile,
  waitUntil,
  type ManagedProcess,
} from './process.ts';
import { REPO_ROOT, type Profile } from './profile.ts';
import type { Reporter } from './reporter.ts';
import { readOrCreateSecret } from './secrets.ts';
import { healthDetail, type ServerStatus, type StackServer } from './server.ts';
import { NATS_SERVER_MODULE, NATS_SERVER_VERSION, toolCacheDir } from './versions.ts';

/** One NATS user per service, plus `admin` for provisioning and tests and `cli` for the command line. */
export const NATS_USERS = [
  'admin',
  'policy',
  'audit',
  'sink-clickhouse',
  'sink-kafka',
  'connector-hsm',
  'connector-aws',
  'connector-azure',
  'connector-gcp',
  'connector-oci',
  'scheduler',
  'incident',
  'cli',
] as const;

const DEFAULT_AUTHORIZATION_FILE = join(
  REPO_ROOT,
  'deploy',
  'nats',
  'generated',
  'authorization.conf',
);
const CONTRACTS_GENERATOR = join(REPO_ROOT, 'contracts', 'scripts', 'generate.ts');
const PASSWORD_VARIABLE_PREFIX = 'KEYTOWER_NATS_PASSWORD_';

export function natsServerBinary(): string {
  return join(toolCacheDir('nats-server', NATS_SERVER_VERSION), 'nats-server');
}

/** Name of the environment variable the authorization file reads a user's password from. */
export function passwordVariable(user: string): string {
  return PASSWORD_VARIABLE_PREFIX + user.toUpperCase().replaceAll('-', '_');
}

/** File holding a user's password, also handed to services as `KEYTOWER_NATS_PASSWORD_FILE`. */
export function natsPasswordFile(profile: Profile, user: string): string {
  return join(profile.secretsDir, `nats-${user}.password`);
}

/**
 * Path of the authorization file to include. `KEYTOWER_NATS_AUTHORIZATION_FILE` replaces the
 * generated one, for tests of the stack itself that run before the contracts generator exists.
 */
function authorizationFile(): string {
  return process.env.KEYTOWER_NATS_AUTHORIZATION_FILE ?? DEFAULT_AUTHORIZATION_FILE;
}

async function ensureAuthorizationFile(report: Reporter): Promise<string> {
  const file = authorizationFile();
  if (existsSync(file)) {
    return file;
  }
  if (file === DEFAULT_AUTHORIZATION_FILE && existsSync(CONTRACTS_GENERATOR)) {
    report.step('NATS authorization file missing: running the contracts generator');
    await runChecked(process.execPath, [CONTRACTS_GENERATOR], { cwd: REPO_ROOT, inherit: true });
    if (existsSync(file)) {
      return file;
    }
  }
  throw new Error(
    `NATS authorization file ${relative(REPO_ROOT, file)} not found: run \`npm run contracts:generate\` first`,
  );
}

/**
 * Users whose passwords the authorization file references: the fixed service list, plus any other
 * `$KEYTOWER_NATS_PASSWORD_<USER>` the file uses, so nats-server never meets an undefined variable.
 */
function usersOf(authorization: string): string[] {
  const users = new Set<string>(NATS_USERS);
  const known = new Map<string, string>(NATS_USERS.map((user) => [passwordVariable(user), user]));
  for (const match of authorization.matchAll(/\$(KEYTOWER_NATS_PASSWORD_[A-Z0-9_]+)/g)) {
    const variable = match[1] as string;
    users.add(
      known.get(variable) ??
        variable.slice(PASSWORD_VARIABLE_PREFIX.length).toLowerCase().replaceAll('_', '-'),
    );
  }
  return [...users];
}

/** Reads or creates the password of every NATS user of the profile. */
export function natsCredentials(
  profile: Profile,
  users: readonly string[] = NATS_USERS,
): Record<string, { user: string; password: string }> {
  const credentials: Record<string, { user: string; password: string }> = {};
  for (const user of users) {
    const fileName = `nats-${user}.password`;
    let password = readOrCreateSecret(profile.secretsDir, fileName);
    if (!/^[A-Za-z]/.test(password)) {
      // Written before secrets started with a letter: nats-server could not parse it, so it never
      // ran with this password and replacing it breaks nothing.
      rmSync(join(profile.secretsDir, fileName));
      password = readOrCreateSecret(profile.secretsDir, fileName);
    }
    credentials[user] = { user, password };
  }
  return credentials;
}

function managed(profile: Profile): ManagedProcess {
  return { pidFile: join(profile.runDir, 'nats.pid'), commandLineMarker: configFile(profile) };
}

function configFile(profile: Profile): string {
  return join(profile.dataDir, 'nats', 'nats.conf');
}

function renderConfig(profile: Profile, authorization: string, authorizationPath: string): string {
  const dataDir = join(profile.dataDir, 'nats');
  const digest = createHash('sha256').update(authorization).digest('hex');
  // NATS resolves an include path relative to the including file, even when it starts with "/".
  const include = relative(dataDir, authorizationPath);
  return [
    '# Written by deploy/local/stack.ts; changes are overwritten on the next `up`.',
    `# authorization digest: sha256:${digest}`,
    `server_name: "keytower-${profile.name}"`,
    `listen: "127.0.0.1:${profile.ports.nats}"`,
    `http: "127.0.0.1:${profile.ports.natsMonitor}"`,
    'jetstream {',
    `  store_dir: "${join(dataDir, 'jetstream')}"`,
    '  max_memory_store: 1GB',
    // JetStream reserves each stream's and bucket's max bytes against this ceiling and rejects a
    // stream that would exceed it. The topology reserves about 30 GiB in total. Files grow only with
    // the data stored, so the ceiling allocates no disk.
    '  max_file_store: 64GB',
    '}',
    `include "${include}"`,
    '',
  ].join('\n');
}

async function isHealthy(profile: Profile): Promise<boolean> {
  const response = await httpGet(
    `http://127.0.0.1:${profile.ports.natsMonitor}/healthz?js-enabled-only=true`,
  );
  return response?.status === 200;
}

export const nats: StackServer = {
  name: 'nats',

  async install(report) {
    const binary = natsServerBinary();
    if (existsSync(binary)) {
      return;
    }
    report.step(`building nats-server ${NATS_SERVER_VERSION} with go install`);
    const env = {
      ...process.env,
      GOBIN: toolCacheDir('nats-server', NATS_SERVER_VERSION),
      CGO_ENABLED: '0',
    };
    await runChecked('go', ['install', `${NATS_SERVER_MODULE}@v${NATS_SERVER_VERSION}`], {
      env,
      inherit: true,
    });
  },

  async up(profile, report) {
    const authorizationPath = await ensureAuthorizationFile(report);
    const authorization = readFileSync(authorizationPath, 'utf8');
    const users = usersOf(authorization);
    const credentials = natsCredentials(profile, users);

    const config = renderConfig(profile, authorization, authorizationPath);
    const file = configFile(profile);
    const current = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    const server = managed(profile);

    if (runningPid(server) !== undefined) {
      if (current === config) {
        await waitUntil('NATS health check', () => isHealthy(profile), {
          timeoutMs: 20_000,
          whileAlive: server,
        });
        return;
      }
      report.step('NATS config or authorization changed: restarting nats-server');
      await stopByPidFile(server, 20_000);
    }

    mkdirSync(join(profile.dataDir, 'nats', 'jetstream'), { recursive: true });
    if (current !== config) {
      writeFileSync(file, config);
    }

    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const { user, password } of Object.values(credentials)) {
      env[passwordVariable(user)] = password;
    }
    await assertPortsFree('nats-server', [profile.ports.nats, profile.ports.natsMonitor]);
    const pid = startDetached({
      command: natsServerBinary(),
      args: ['-c', file],
      env,
      cwd: profile.dataDir,
      logFile: join(profile.logsDir, 'nats.log'),
      pidFile: server.pidFile,
    });
    report.step(`nats-server started (pid ${pid}, port ${profile.ports.nats})`);
    await waitUntil('NATS health check', () => isHealthy(profile), {
      timeoutMs: 30_000,
      whileAlive: server,
    });
  },

  async status(profile) {
    const pid = runningPid(managed(profile));
    const healthy = pid !== undefined && (await isHealthy(profile));
    return {
      name: 'nats',
      pid,
      ports: [profile.ports.nats, profile.ports.natsMonitor],
      running: pid !== undefined,
      healthy,
      detail: healthDetail(pid, healthy, 'JetStream healthy', '/healthz is not ok'),
    } satisfies ServerStatus;
  },

  async down(profile, report) {
    const pid = await stopByPidFile(managed(profile), 30_000);
    if (pid !== undefined) {
      report.step(`nats-server stopped (pid ${pid})`);
    }
  },
};

/** Users of the current authorization file: the fixed list plus any extra it references. */
export function configuredNatsUsers(): string[] {
  const file = authorizationFile();
  return existsSync(file) ? usersOf(readFileSync(file, 'utf8')) : [...NATS_USERS];
}
