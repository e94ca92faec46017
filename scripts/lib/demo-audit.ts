/**
 * The audit half of the demo scenario: which audit records the scenario must have caused, and
 * whether each reached ClickHouse and the Kafka SIEM topic, and whether the stored chain verifies.
 *
 * The expected records come from the audit writer's own input. Every command, operation and event
 * about a key is published on a subject ending with that key id, and `KMS_AUDIT_IN` sources all of
 * them, so its messages on `kms.*.v1.*.*.<keyId>` are exactly the messages the scenario caused. The
 * writer derives each record id from the source position alone (`recordId(stream, sequence)`), so
 * the expected ids are computed here without trusting the writer.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { recordId, verifyStoredChain } from '@keytower/audit-chain';
import type { StackDescriptor } from '@keytower/config';
import { STREAMS } from '@keytower/contracts';
import { allAuditRows, auditRowsForKeys, type StoredAuditRow } from './demo-clickhouse.ts';
import { readSiemTopic } from './demo-kafka.ts';
import { connectAdmin, readStream, type StoredStreamMessage } from './demo-nats.ts';

const POLL_INTERVAL_MS = 500;

/** What the audit checks found. */
export interface AuditTrailReport {
  /** Source messages about the scenario's keys in `KMS_AUDIT_IN`. */
  sourceMessages: number;
  expectedRecordIds: string[];
  clickhouseRecords: number;
  kafkaRecords: number;
  /** Kafka messages that repeated a record id already read (at-least-once delivery). */
  kafkaRepeats: number;
  /** Records of the whole stored chain that verified, from sequence 1. */
  chainVerified: number;
  chainHeadSequence: number;
  chainHeadHash: string;
}

/** Options of {@link checkAuditTrail}; `step` runs one titled, printed step of the scenario. */
export interface AuditTrailOptions {
  descriptor: StackDescriptor;
  keyIds: readonly string[];
  commandIds: readonly string[];
  terminalEventIds: readonly string[];
  timeoutMs: number;
  step: (title: string, work: () => Promise<string>) => Promise<void>;
}

/** Runs the three audit steps; a failing step throws from `step`. */
export async function checkAuditTrail(options: AuditTrailOptions): Promise<AuditTrailReport> {
  const { descriptor, keyIds, timeoutMs } = options;
  const report: AuditTrailReport = {
    sourceMessages: 0,
    expectedRecordIds: [],
    clickhouseRecords: 0,
    kafkaRecords: 0,
    kafkaRepeats: 0,
    chainVerified: 0,
    chainHeadSequence: 0,
    chainHeadHash: '',
  };

  await options.step(
    'audit records of every scenario message are in ClickHouse, once each (FINAL)',
    async () => {
      // KMS_AUDIT_IN sources the other streams asynchronously, so the last event may arrive a moment later.
      const scenarioIds = [...options.commandIds, ...options.terminalEventIds];
      const missingFrom = (messages: StoredStreamMessage[]): string[] => {
        const sourceIds = new Set(messages.map(envelopeIdOf));
        return scenarioIds.filter((id) => !sourceIds.has(id));
      };
      const sources = await pollUntil(
        timeoutMs,
        () => readSourceMessages(descriptor, keyIds),
        (messages) => missingFrom(messages).length === 0,
      );
      const missingSources = missingFrom(sources);
      if (missingSources.length > 0) {
        throw new Error(
          `${missingSources.length} command(s) or event(s) of the scenario are missing from ${STREAMS.auditIn}: ${missingSources.join(', ')}`,
        );
      }
      report.sourceMessages = sources.length;
      report.expectedRecordIds = sources.map((message) =>
        recordId(message.stream, message.sequence),
      );

      const expected = new Set(report.expectedRecordIds);
      const rows = await pollUntil(
        timeoutMs,
        () => auditRowsForKeys(descriptor, keyIds),
        (found) => found.filter((row) => expected.has(row.recordId)).length === expected.size,
      );
      checkClickHouseRows(rows, expected, options.commandIds);
      report.clickhouseRecords = rows.length;
      return `${sources.length} source messages (${options.commandIds.length} commands, their operations and events) -> ${rows.length} records, none missing, none twice`;
    },
  );

  await options.step(
    'the same records are on the Kafka SIEM topic (read from the beginning, de-duplicated by record id)',
    async () => {
      const expected = report.expectedRecordIds;
      const read = await readSiemTopic(descriptor, {
        groupId: `keytower-demo-check-${Date.now()}`,
        timeoutMs,
        isComplete: (ids) => expected.every((id) => ids.has(id)),
      });
      const missing = expected.filter((id) => !read.recordIds.has(id));
      if (missing.length > 0) {
        throw new Error(
          `${missing.length} of ${expected.length} records missing on topic ${descriptor.kafka.topic} after ${timeoutMs / 1000} s: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`,
        );
      }
      report.kafkaRecords = expected.length;
      report.kafkaRepeats = read.repeats;
      return `all ${expected.length} records on ${descriptor.kafka.topic} (${read.messages} messages read in total, ${read.repeats} repeated deliveries dropped)`;
    },
  );

  await options.step('the audit chain stored in ClickHouse verifies from sequence 1', async () => {
    const rows = await allAuditRows(descriptor);
    const verification = verifyStoredChain(
      rows.map((row) => ({ canonical: row.canonical, hash: row.hash })),
    );
    if (!verification.ok) {
      throw new Error(
        `${verification.break.message} (after ${verification.verified} verified records)`,
      );
    }
    const scenarioSequences = rows
      .filter((row) => keyIds.includes(row.keyId))
      .map((row) => row.sequence);
    const lastScenarioSequence = Math.max(...scenarioSequences);
    if (lastScenarioSequence > verification.head.sequence) {
      throw new Error(
        `the scenario's record ${lastScenarioSequence} lies beyond the verified chain head ${verification.head.sequence}`,
      );
    }
    report.chainVerified = verification.verified;
    report.chainHeadSequence = verification.head.sequence;
    report.chainHeadHash = verification.head.hash;
    return `${verification.verified} records verified, unbroken; head sequence ${verification.head.sequence}, hash ${verification.head.hash.slice(0, 16)}…`;
  });

  return report;
}

async function readSourceMessages(
  descriptor: StackDescriptor,
  keyIds: readonly string[],
): Promise<StoredStreamMessage[]> {
  const bus = await connectAdmin(descriptor, 'keytower-demo');
  try {
    // Commands, operations and events: kms.<kind>.v1.<group>.<name>.<keyId>.
    return await readStream(
      bus,
      STREAMS.auditIn,
      keyIds.map((keyId) => `kms.*.v1.*.*.${keyId}`),
    );
  } finally {
    await bus.close();
  }
}

function envelopeIdOf(message: StoredStreamMessage): string | undefined {
  try {
    const envelope = JSON.parse(Buffer.from(message.data).toString('utf8')) as { id?: unknown };
    return typeof envelope.id === 'string' ? envelope.id : undefined;
  } catch {
    return undefined;
  }
}

function checkClickHouseRows(
  rows: readonly StoredAuditRow[],
  expected: ReadonlySet<string>,
  commandIds: readonly string[],
): void {
  const seen = new Set<string>();
  for (const row of rows) {
    if (seen.has(row.recordId)) {
      throw new Error(
        `record ${row.recordId} (sequence ${row.sequence}) appears twice in ClickHouse even with FINAL`,
      );
    }
    seen.add(row.recordId);
    if (!expected.has(row.recordId)) {
      throw new Error(
        `record ${row.recordId} (sequence ${row.sequence}, ${row.messageType}) names a scenario key but matches no source message`,
      );
    }
  }
  const missing = [...expected].filter((id) => !seen.has(id));
  if (missing.length > 0) {
    throw new Error(
      `${missing.length} of ${expected.size} records missing in ClickHouse: ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`,
    );
  }
  const messageIds = new Set(rows.map((row) => row.messageId));
  const unaudited = commandIds.filter((id) => !messageIds.has(id));
  if (unaudited.length > 0) {
    throw new Error(`no audit record carries command id(s) ${unaudited.join(', ')}`);
  }
}

/** Calls `read` until `done` accepts its result or `timeoutMs` passes, and returns the last result. */
async function pollUntil<T>(
  timeoutMs: number,
  read: () => Promise<T>,
  done: (value: T) => boolean,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await sleep(POLL_INTERVAL_MS);
    value = await read();
  }
  return value;
}
