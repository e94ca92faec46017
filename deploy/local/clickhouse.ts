/**
 * ClickHouse (Debian's clickhouse-server 18.16): a private config per profile that points every
 * path into the data folder and listens on 127.0.0.1 only, then the keytower schema.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
import { healthDetail, type ServerStatus, type StackServer } from './server.ts';
import { CLICKHOUSE_SERVER_BINARY } from './versions.ts';

export const CLICKHOUSE_DATABASE = 'keytower';
const SCHEMA_FILE = join(REPO_ROOT, 'deploy', 'clickhouse', 'schema.sql');

function serverDir(profile: Profile): string {
  return join(profile.dataDir, 'clickhouse');
}

function configFile(profile: Profile): string {
  return join(serverDir(profile), 'config.xml');
}

function managed(profile: Profile): ManagedProcess {
  return {
    pidFile: join(profile.runDir, 'clickhouse.pid'),
    commandLineMarker: configFile(profile),
  };
}

function renderConfig(profile: Profile): string {
  const dir = serverDir(profile);
  return `<?xml version="1.0"?>
<!-- Written by deploy/local/stack.ts; changes are overwritten on the next \`up\`. -->
<yandex>
  <logger>
    <level>warning</level>
    <log>${join(profile.logsDir, 'clickhouse.log')}</log>
    <errorlog>${join(profile.logsDir, 'clickhouse.err.log')}</errorlog>
    <size>100M</size>
    <count>3</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${profile.ports.clickhouseHttp}</http_port>
  <tcp_port>${profile.ports.clickhouseTcp}</tcp_port>
  <interserver_http_port>${profile.ports.clickhouseInterserver}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <max_connections>256</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>64</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <path>${join(dir, 'data')}/</path>
  <tmp_path>${join(dir, 'tmp')}/</tmp_path>
  <user_files_path>${join(dir, 'user_files')}/</user_files_path>
  <format_schema_path>${join(dir, 'format_schemas')}/</format_schema_path>
  <users_config>${join(dir, 'users.xml')}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
`;
}

/** The `default` user without a password, reachable from 127.0.0.1 only. */
const USERS_CONFIG = `<?xml version="1.0"?>
<!-- Written by deploy/local/stack.ts; changes are overwritten on the next \`up\`. -->
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
    </default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries>
        <errors>0</errors>
        <result_rows>0</result_rows>
        <read_rows>0</read_rows>
        <execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`;

function writeIfChanged(file: string, content: string): boolean {
  if (existsSync(file) && readFileSync(file, 'utf8') === content) {
    return false;
  }
  writeFileSync(file, content);
  return true;
}

async function isHealthy(profile: Profile): Promise<boolean> {
  const response = await httpGet(`http://127.0.0.1:${profile.ports.clickhouseHttp}/ping`);
  return response?.status === 200 && response.body.trim() === 'Ok.';
}

async function execute(profile: Profile, statement: string): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${profile.ports.clickhouseHttp}/`, {
    method: 'POST',
    body: statement,
    signal: AbortSignal.timeout(30_000),
  });
  if (!response.ok) {
    const summary = statement.replace(/\s+/g, ' ').slice(0, 80);
    throw new Error(
      `ClickHouse rejected "${summary}…" with HTTP ${response.status}: ${(await response.text()).trim()}`,
    );
  }
}

/**
 * Splits a SQL file into statements on `;`. Line comments are removed first, so a `;` inside a
 * comment does not split; a `;` inside a string literal would, and the schema avoids that.
 */
export function splitStatements(sql: string): string[] {
  return sql
    .split('\n')
    .map((line) => line.replace(/--.*$/, ''))
    .join('\n')
    .split(';')
    .map((statement) => statement.trim())
    .filter((statement) => statement.length > 0);
}

async function applySchema(profile: Profile, report: Reporter): Promise<void> {
  await execute(profile, `CREATE DATABASE IF NOT EXISTS ${CLICKHOUSE_DATABASE}`);
  if (!existsSync(SCHEMA_FILE)) {
    report.warn('deploy/clickhouse/schema.sql does not exist yet: created only the database');
    return;
  }
  const statements = splitStatements(readFileSync(SCHEMA_FILE, 'utf8'));
  for (const statement of statements) {
    await execute(profile, statement);
  }
}

export const clickhouse: StackServer = {
  name: 'clickhouse',

  async install() {
    // Installed with the other Debian packages by ensureAptPackages.
  },

  async up(profile, report) {
    const dir = serverDir(profile);
    for (const sub of ['data', 'tmp', 'user_files', 'format_schemas']) {
      mkdirSync(join(dir, sub), { recursive: true });
    }
    const configChanged = writeIfChanged(configFile(profile), renderConfig(profile));
    const usersChanged = writeIfChanged(join(dir, 'users.xml'), USERS_CONFIG);
    const server = managed(profile);

    if (runningPid(server) !== undefined && (configChanged || usersChanged)) {
      report.step('ClickHouse config changed: restarting clickhouse-server');
      await stopByPidFile(server, 30_000);
    }

    if (runningPid(server) === undefined) {
      await assertPortsFree('clickhouse-server', [
        profile.ports.clickhouseHttp,
        profile.ports.clickhouseTcp,
        profile.ports.clickhouseInterserver,
      ]);
      const pid = startDetached({
        command: CLICKHOUSE_SERVER_BINARY,
        args: [`--config-file=${configFile(profile)}`],
        cwd: dir,
        logFile: join(profile.logsDir, 'clickhouse.out.log'),
        pidFile: server.pidFile,
      });
      report.step(
        `clickhouse-server started (pid ${pid}, HTTP port ${profile.ports.clickhouseHttp})`,
      );
    }

    await waitUntil('ClickHouse /ping', () => isHealthy(profile), {
      timeoutMs: 60_000,
      whileAlive: server,
    });
    await applySchema(profile, report);
  },

  async status(profile) {
    const pid = runningPid(managed(profile));
    const healthy = pid !== undefined && (await isHealthy(profile));
    return {
      name: 'clickhouse',
      pid,
      ports: [
        profile.ports.clickhouseHttp,
        profile.ports.clickhouseTcp,
        profile.ports.clickhouseInterserver,
      ],
      running: pid !== undefined,
      healthy,
      detail: healthDetail(pid, healthy, '/ping ok', '/ping failed'),
    } satisfies ServerStatus;
  },

  async down(profile, report) {
    const pid = await stopByPidFile(managed(profile), 30_000);
    if (pid !== undefined) {
      report.step(`clickhouse-server stopped (pid ${pid})`);
    }
  },
};
