/**
 * Pinned versions of every server and tool the local stack runs, and where their builds are
 * cached. Changing a version here makes the next `up` fetch or build it into a new cache folder.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export const NATS_SERVER_VERSION = '2.15.3';
export const NATS_SERVER_MODULE = 'github.com/nats-io/nats-server/v2';

export const KAFKA_VERSION = '4.1.1';
export const KAFKA_SCALA_VERSION = '2.13';
/**
 * SLF4J binding for the broker. Kafka 4.1 depends on slf4j-api 1.7 and log4j-core 2, so the binding
 * is log4j-slf4j-impl (the SLF4J 1.x bridge) at the log4j-core version Kafka itself pulls in.
 */
export const KAFKA_LOG4J_SLF4J_VERSION = '2.24.3';

/** Debian packages the stack needs, each with a command that proves it is installed. */
export const APT_PACKAGES: readonly { name: string; binary: string }[] = [
  { name: 'softhsm2', binary: '/usr/bin/softhsm2-util' },
  { name: 'opensc', binary: '/usr/bin/pkcs11-tool' },
  { name: 'clickhouse-server', binary: '/usr/sbin/clickhouse-server' },
  { name: 'clickhouse-client', binary: '/usr/bin/clickhouse-client' },
  { name: 'openjdk-17-jre-headless', binary: '/usr/lib/jvm/java-17-openjdk-amd64/bin/java' },
];

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
export const CLICKHOUSE_SERVER_BINARY = '/usr/sbin/clickhouse-server';
export const JAVA_17_BINARY = '/usr/lib/jvm/java-17-openjdk-amd64/bin/java';

/** Root of the tool cache, outside the repository so a fresh clone reuses it. */
export function toolCacheRoot(): string {
  return process.env.KEYTOWER_TOOL_CACHE ?? join(homedir(), '.cache', 'keytower');
}

/** Folder of one tool at one version, e.g. `~/.cache/keytower/nats-server-2.15.3`. */
export function toolCacheDir(tool: string, version: string): string {
  return join(toolCacheRoot(), `${tool}-${version}`);
}
