/** Renders benchmark results as a console table and as a dated section of docs/BENCHMARKS.md. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { AuditBacklogResult } from './bench-audit.ts';
import type { JetStreamCeilingResult } from './bench-jetstream.ts';
import type { MachineDescription } from './bench-machine.ts';
import type { DirectLoopResult } from './bench-pkcs11.ts';
import type { PipelineLoopResult } from './bench-pipeline.ts';

/** One concurrency level of the lifecycle comparison. */
export interface LifecycleComparison {
  concurrency: number;
  pipeline: PipelineLoopResult;
  direct: DirectLoopResult;
  /** Runs of the direct loop that crashed and were repeated before this result. */
  directCrashes: string[];
}

/** Everything one benchmark run measured. */
export interface BenchResults {
  date: Date;
  command: string;
  mode: 'quick' | 'full';
  machine: MachineDescription;
  /** One-minute load averages when the measurements started and ended; other work on the machine skews every figure. */
  loadAverage: { start: number; end: number };
  lifecycle: LifecycleComparison[];
  audit: AuditBacklogResult;
  jetstream: JetStreamCeilingResult;
}

const DOC_HEADER = `# Benchmarks

Measured figures of keytower on one machine, newest last. Each section records the exact
command, the machine, its load and the date, so figures from different machines or busy hours
are not compared by accident. \`npm run bench\` (or \`npm run bench -- --quick\`) appends a
section; older sections stay as they were. Every run starts from an empty \`bench\` stack profile
(fresh token, streams and tables, ports + 35000) and takes it down at the end. Tests never assert
speed: figures and any targets belong on this page.

What is measured:

- **Lifecycle commands**: \`create AES_256\` commands on the HSM provider (SoftHSM2), published the
  way a client publishes them. Each is timed from the publish until its status in \`kms_commands\`
  is terminal, which covers policy's decision and admission, connector-hsm's PKCS#11 work, the
  outcome event and policy's projection. The baseline is a direct PKCS#11 loop through pkcs11js
  with no bus. It does the same token work: look for the label, generate the key with the same
  attributes, read its attributes back. It keeps the same number of commands in flight on at most
  4 sessions, the size of connector-hsm's default session pool. The direct loop runs first at
  each level and destroys its keys afterwards, so both loops find the same number of objects on
  the token.
- **Audit records to the sinks**: with the audit writer and both sinks stopped, a burst of commands
  runs through policy and connector-hsm; then the sinks and the writer start and drain the backlog.
  Each step's rate is its records over the time from the writer's first appended record to the
  step's last record. The writer's progress comes from polling the last sequence of \`KMS_AUDIT\`
  (which both sinks read) and ClickHouse's from counting rows with \`FINAL\`, both every 100 ms.
  Kafka's comes from the timestamps the sink's producer set. The baseline is one publisher and one
  consumer moving messages of the mean record size through a file-backed JetStream stream on the
  same server, with message ids and explicit acks: the raw JetStream publish-and-consume ceiling,
  the fastest of three rounds.
`;

function fixed(value: number, digits = 1): string {
  return value.toFixed(digits);
}

function ratio(numerator: number, denominator: number): string {
  return denominator > 0 ? `${fixed(numerator / denominator, 2)}` : '-';
}

function rows(results: BenchResults): string[][] {
  const table: string[][] = [['measure', 'keytower', 'baseline', 'keytower / baseline']];
  for (const level of results.lifecycle) {
    const { pipeline, direct, concurrency } = level;
    table.push([
      `create AES_256, ${concurrency} in flight: commands/s`,
      fixed(pipeline.commandsPerSecond),
      `${fixed(direct.keysPerSecond)} (direct PKCS#11)`,
      ratio(pipeline.commandsPerSecond, direct.keysPerSecond),
    ]);
    table.push([
      `create AES_256, ${concurrency} in flight: p50 / p99 ms`,
      `${fixed(pipeline.latency.p50Ms)} / ${fixed(pipeline.latency.p99Ms)}`,
      `${fixed(direct.latency.p50Ms)} / ${fixed(direct.latency.p99Ms)}`,
      `${ratio(pipeline.latency.p50Ms, direct.latency.p50Ms)} / ${ratio(pipeline.latency.p99Ms, direct.latency.p99Ms)}`,
    ]);
  }
  const raw = results.jetstream.messagesPerSecond;
  const rawLabel = `${fixed(raw, 0)} (raw JetStream)`;
  table.push([
    'audit records/s appended by the writer (KMS_AUDIT)',
    fixed(results.audit.writer.recordsPerSecond, 0),
    rawLabel,
    ratio(results.audit.writer.recordsPerSecond, raw),
  ]);
  table.push([
    'audit records/s reaching ClickHouse',
    fixed(results.audit.clickhouse.recordsPerSecond, 0),
    rawLabel,
    ratio(results.audit.clickhouse.recordsPerSecond, raw),
  ]);
  table.push([
    'audit records/s reaching Kafka',
    fixed(results.audit.kafka.recordsPerSecond, 0),
    rawLabel,
    ratio(results.audit.kafka.recordsPerSecond, raw),
  ]);
  return table;
}

/** Formats the comparison table for the terminal, with aligned columns. */
export function formatConsoleTable(results: BenchResults): string {
  const table = rows(results);
  const widths = table[0]!.map((_cell, column) =>
    Math.max(...table.map((row) => row[column]!.length)),
  );
  return table
    .map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  '))
    .join('\n');
}

function markdownTable(table: string[][]): string {
  const [header, ...body] = table;
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header!), line(header!.map(() => '---')), ...body.map(line)].join('\n');
}

/** Renders the dated section this run appends to docs/BENCHMARKS.md. */
export function formatMarkdownSection(results: BenchResults): string {
  const { machine, audit, jetstream } = results;
  const details: string[] = [];
  for (const level of results.lifecycle) {
    const { pipeline, direct } = level;
    const failures = Object.entries(pipeline.unsuccessful).map(
      ([status, count]) => `${count} ${status}`,
    );
    const directFailures = Object.entries(direct.failures)
      .map(([name, count]) => `, ${count} ${name}`)
      .join('');
    const crashes =
      level.directCrashes.length === 0
        ? ''
        : ` The direct loop crashed ${level.directCrashes.length} time(s) first and was run again: ${level.directCrashes.join('; ')}.`;
    details.push(
      `- ${level.concurrency} in flight: ${pipeline.commands} commands in ${fixed(pipeline.elapsedMs / 1000, 2)} s (${pipeline.succeeded} succeeded${failures.length > 0 ? `, ${failures.join(', ')}` : ''}), max latency ${fixed(pipeline.latency.maxMs)} ms; direct loop ${direct.keys} keys in ${fixed(direct.elapsedMs / 1000, 2)} s (${direct.succeeded} succeeded${directFailures}) with ${direct.tokenObjectsBefore} objects on the token before it, max ${fixed(direct.latency.maxMs)} ms.${crashes}`,
    );
  }
  details.push(
    `- Audit backlog: ${audit.sourceMessages} source messages, mean canonical record ${audit.meanRecordBytes} bytes. From the writer's first record to the last one appended ${fixed(audit.writer.spanMs / 1000, 2)} s, stored in ClickHouse ${fixed(audit.clickhouse.spanMs / 1000, 2)} s, sent to Kafka ${fixed(audit.kafka.spanMs / 1000, 2)} s. Counted from the writer's process start instead: ${fixed(audit.writer.drainMs / 1000, 2)} s, ${fixed(audit.clickhouse.drainMs / 1000, 2)} s and ${fixed(audit.kafka.drainMs / 1000, 2)} s.`,
  );
  details.push(
    `- Raw JetStream: ${jetstream.messages} messages of ${jetstream.messageBytes} bytes published and consumed in ${fixed(jetstream.elapsedMs / 1000, 2)} s (publishing alone ${fixed(jetstream.publishOnlyMs / 1000, 2)} s).`,
  );

  return [
    `## ${results.date.toISOString().slice(0, 16).replace('T', ' ')} UTC (${results.mode})`,
    '',
    `- Command: \`${results.command}\``,
    `- Machine: ${machine.cpuModel}, ${machine.cpuCount} CPUs (\`nproc\`), ${machine.memoryMiB} MiB memory (\`free -m\`), ${machine.platform}`,
    `- Node ${machine.nodeVersion}; every server on the same machine (NATS, ClickHouse, Kafka, SoftHSM2) and every service as its own process`,
    `- One-minute load average ${fixed(results.loadAverage.start, 2)} at the start, ${fixed(results.loadAverage.end, 2)} at the end (other work on the machine lowers every figure)`,
    '',
    markdownTable(rows(results)),
    '',
    ...details,
    '',
  ].join('\n');
}

/** Appends the run's section to the benchmark page, creating the page with its header when missing. */
export function appendToBenchmarksPage(path: string, results: BenchResults): void {
  const existing = existsSync(path) ? readFileSync(path, 'utf8') : DOC_HEADER;
  const separator = existing.endsWith('\n\n') ? '' : existing.endsWith('\n') ? '\n' : '\n\n';
  writeFileSync(path, `${existing}${separator}${formatMarkdownSection(results)}`);
}
