/**
 * Kafka in KRaft mode, one node acting as broker and controller. The broker and its runtime jars
 * are resolved from Maven Central into the tool cache with a small generated pom; the SIEM topic is
 * created with the KafkaJS admin client.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { runChecked } from './commands.ts';
import {
  assertPortsFree,
  runningPid,
  startDetached,
  stopByPidFile,
  waitUntil,
  type ManagedProcess,
} from './process.ts';
import type { Profile } from './profile.ts';
import type { Reporter } from './reporter.ts';
import { healthDetail, type ServerStatus, type StackServer } from './server.ts';
import {
  JAVA_17_BINARY,
  KAFKA_LOG4J_SLF4J_VERSION,
  KAFKA_SCALA_VERSION,
  KAFKA_VERSION,
  toolCacheDir,
} from './versions.ts';

export const KAFKA_AUDIT_TOPIC = 'keytower.audit.v1';

const RESOLVED_MARKER = '.keytower-resolved';

function cacheDir(): string {
  return toolCacheDir('kafka', KAFKA_VERSION);
}

function libsDir(): string {
  return join(cacheDir(), 'libs');
}

function renderPom(): string {
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by deploy/local/kafka.ts to resolve the Kafka broker's runtime jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.keytower.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>${KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_${KAFKA_SCALA_VERSION}</artifactId>
      <version>${KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>${KAFKA_LOG4J_SLF4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
`;
}

function javaBinary(): string {
  return existsSync(JAVA_17_BINARY) ? JAVA_17_BINARY : 'java';
}

function classPath(): string {
  return `${libsDir()}/*`;
}

function serverDir(profile: Profile): string {
  return join(profile.dataDir, 'kafka');
}

function propertiesFile(profile: Profile): string {
  return join(serverDir(profile), 'kraft.properties');
}

function managed(profile: Profile): ManagedProcess {
  return { pidFile: join(profile.runDir, 'kafka.pid'), commandLineMarker: propertiesFile(profile) };
}

function renderProperties(profile: Profile): string {
  const { kafka: port, kafkaController: controllerPort } = profile.ports;
  return [
    '# Written by deploy/local/stack.ts; changes are overwritten on the next `up`.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${join(serverDir(profile), 'logs')}`,
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    '',
  ].join('\n');
}

const LOG4J2_PROPERTIES = `# Written by deploy/local/stack.ts: broker log lines go to stdout, which the stack writes to logs/kafka.log.
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.clients.name = org.apache.kafka.clients
logger.clients.level = warn
`;

function writeIfChanged(file: string, content: string): boolean {
  if (existsSync(file) && readFileSync(file, 'utf8') === content) {
    return false;
  }
  writeFileSync(file, content);
  return true;
}

function adminClient(profile: Profile): Kafka {
  return new Kafka({
    clientId: `keytower-stack-${profile.name}`,
    brokers: [`127.0.0.1:${profile.ports.kafka}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    requestTimeout: 5000,
    retry: { retries: 0 },
  });
}

/** Sends a metadata request; healthy when the response lists at least one broker. */
async function isHealthy(profile: Profile): Promise<boolean> {
  const admin = adminClient(profile).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function ensureTopic(profile: Profile, report: Reporter): Promise<void> {
  const admin = adminClient(profile).admin();
  try {
    await admin.connect();
    const created = await admin.createTopics({
      topics: [{ topic: KAFKA_AUDIT_TOPIC, numPartitions: 1, replicationFactor: 1 }],
      waitForLeaders: true,
    });
    if (created) {
      report.step(`Kafka topic ${KAFKA_AUDIT_TOPIC} created`);
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function formatStorage(profile: Profile, report: Reporter): Promise<void> {
  const logDir = join(serverDir(profile), 'logs');
  if (existsSync(join(logDir, 'meta.properties'))) {
    return;
  }

  const clusterIdFile = join(serverDir(profile), 'cluster.id');
  let clusterId = existsSync(clusterIdFile) ? readFileSync(clusterIdFile, 'utf8').trim() : '';
  if (clusterId.length === 0) {
    const result = await runChecked(javaBinary(), [
      '-cp',
      classPath(),
      'kafka.tools.StorageTool',
      'random-uuid',
    ]);
    clusterId = result.stdout.trim().split('\n').at(-1)?.trim() ?? '';
    writeFileSync(clusterIdFile, `${clusterId}\n`);
  }

  report.step(`formatting Kafka storage (cluster id ${clusterId})`);
  await runChecked(javaBinary(), [
    '-cp',
    classPath(),
    'kafka.tools.StorageTool',
    'format',
    '--standalone',
    '--cluster-id',
    clusterId,
    '--config',
    propertiesFile(profile),
  ]);
}

export const kafka: StackServer = {
  name: 'kafka',

  async install(report) {
    const pom = renderPom();
    const digest = createHash('sha256').update(pom).digest('hex');
    const marker = join(libsDir(), RESOLVED_MARKER);
    if (existsSync(marker) && readFileSync(marker, 'utf8').trim() === digest) {
      return;
    }

    report.step(`resolving Kafka ${KAFKA_VERSION} jars with Maven into ${libsDir()}`);
    mkdirSync(libsDir(), { recursive: true });
    const pomFile = join(cacheDir(), 'pom.xml');
    writeFileSync(pomFile, pom);
    // copy-dependencies only adds and overwrites jars, so a broker already running from this folder
    // keeps working. Maven's output is kept, not shown, because Maven 3.8 prints bare color resets
    // even in batch mode; runChecked shows its last lines if the resolution fails.
    await runChecked('mvn', [
      '-q',
      '-B',
      '-Dstyle.color=never',
      '-f',
      pomFile,
      'dependency:copy-dependencies',
      '-DincludeScope=runtime',
      `-DoutputDirectory=${libsDir()}`,
    ]);
    writeFileSync(marker, `${digest}\n`);
  },

  async up(profile, report) {
    const dir = serverDir(profile);
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const propertiesChanged = writeIfChanged(propertiesFile(profile), renderProperties(profile));
    const loggingChanged = writeIfChanged(join(dir, 'log4j2.properties'), LOG4J2_PROPERTIES);
    const server = managed(profile);

    if (runningPid(server) !== undefined && (propertiesChanged || loggingChanged)) {
      report.step('Kafka config changed: restarting the broker');
      await stopByPidFile(server, 60_000);
    }

    if (runningPid(server) === undefined) {
      await assertPortsFree('the Kafka broker', [
        profile.ports.kafka,
        profile.ports.kafkaController,
      ]);
      await formatStorage(profile, report);
      const pid = startDetached({
        command: javaBinary(),
        args: [
          '-Xmx512m',
          '-XX:+UseG1GC',
          '-Djava.awt.headless=true',
          `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`,
          '-cp',
          classPath(),
          'kafka.Kafka',
          propertiesFile(profile),
        ],
        cwd: dir,
        logFile: join(profile.logsDir, 'kafka.log'),
        pidFile: server.pidFile,
      });
      report.step(`Kafka broker started (pid ${pid}, port ${profile.ports.kafka})`);
    }

    await waitUntil('Kafka metadata request', () => isHealthy(profile), {
      timeoutMs: 120_000,
      intervalMs: 500,
      whileAlive: server,
    });
    await ensureTopic(profile, report);
  },

  async status(profile) {
    const pid = runningPid(managed(profile));
    const healthy = pid !== undefined && (await isHealthy(profile));
    return {
      name: 'kafka',
      pid,
      ports: [profile.ports.kafka, profile.ports.kafkaController],
      running: pid !== undefined,
      healthy,
      detail: healthDetail(pid, healthy, 'metadata request ok', 'metadata request failed'),
    } satisfies ServerStatus;
  },

  async down(profile, report) {
    const pid = await stopByPidFile(managed(profile), 60_000);
    if (pid !== undefined) {
      report.step(`Kafka broker stopped (pid ${pid})`);
    }
  },
};
