import { createHash } from 'node:crypto';

import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { canonicalRecord, type AuditRecord } from '@keytower/audit-chain';

/** Table the sink writes, created by `deploy/clickhouse/schema.sql`. */
export const AUDIT_TABLE = 'audit_records';

/** One row of `audit_records`, as sent in JSONEachRow. */
export interface AuditRow {
  /** The record's own time, in Unix seconds, so the server's time zone plays no part. */
  time: number;
  key_id: string;
  record_id: string;
  sequence: number;
  hash: string;
  prev_hash: string;
  message_type: string;
  message_id: string;
  actor: string;
  /** NATS subject of the source message. */
  subject: string;
  source_stream: string;
  source_sequence: number;
  correlation_id: string;
  schema_version: number;
  /** The exact RFC 8785 bytes the record's hash covers. */
  canonical: string;
}

const READ_COLUMNS =
  'toUnixTimestamp(time) AS time, key_id, record_id, sequence, hash, prev_hash, message_type, message_id, actor, subject, ' +
  'source_stream, source_sequence, correlation_id, schema_version, canonical';

/** Maps an audit record to its row; absent values become empty strings for the String columns. */
export function auditRow(record: AuditRecord): AuditRow {
  return {
    time: Math.floor(Date.parse(record.time) / 1000),
    key_id: record.keyId ?? '',
    record_id: record.recordId,
    sequence: record.sequence,
    hash: record.hash,
    prev_hash: record.prevHash,
    message_type: record.message.type ?? '',
    message_id: record.message.id ?? '',
    actor: record.message.actor ?? '',
    subject: record.source.subject,
    source_stream: record.source.stream,
    source_sequence: record.source.sequence,
    correlation_id: record.message.correlationid ?? '',
    schema_version: record.schemaVersion,
    canonical: canonicalRecord(record),
  };
}

/** Connection settings of {@link ClickHouseAuditStore}. */
export interface ClickHouseStoreOptions {
  url: string;
  database: string;
  username: string;
  password: string;
  /** Time limit of one HTTP request, in milliseconds. */
  requestTimeoutMs: number;
}

/**
 * The audit table in ClickHouse: batch inserts and de-duplicated reads.
 *
 * Inserts may repeat (the sink is at-least-once), so every read uses FINAL, which collapses
 * rows sharing a record id even before background merges run.
 */
export class ClickHouseAuditStore {
  readonly client: ClickHouseClient;
  readonly database: string;
  #tokenSupported: boolean | undefined;

  constructor(options: ClickHouseStoreOptions) {
    this.database = options.database;
    this.client = createClient({
      url: options.url,
      username: options.username,
      password: options.password,
      database: options.database,
      request_timeout: options.requestTimeoutMs,
    });
  }

  /**
   * Returns whether the server has the `insert_deduplication_token` setting. ClickHouse
   * 18.16 does not and rejects a query that sends it, so the result is read from
   * `system.settings` once per store.
   */
  async supportsDeduplicationToken(): Promise<boolean> {
    if (this.#tokenSupported === undefined) {
      const result = await this.client.query({
        query:
          "SELECT count() AS found FROM system.settings WHERE name = 'insert_deduplication_token'",
        format: 'JSONEachRow',
      });
      const rows = await result.json<{ found: string | number }>();
      this.#tokenSupported = Number(rows[0]?.found ?? 0) > 0;
    }
    return this.#tokenSupported;
  }

  /**
   * Inserts a batch of records in one JSONEachRow insert and resolves once the server
   * confirmed it. Where the server supports it, the batch carries a de-duplication token
   * derived from its record ids, so a retried batch is not stored twice on tables that
   * de-duplicate inserts (replicated tables on current servers).
   */
  async insert(records: readonly AuditRecord[]): Promise<void> {
    if (records.length === 0) {
      return;
    }

    const token = (await this.supportsDeduplicationToken()) ? batchToken(records) : undefined;
    await this.client.insert({
      table: AUDIT_TABLE,
      values: records.map(auditRow),
      format: 'JSONEachRow',
      ...(token === undefined
        ? {}
        : { clickhouse_settings: { insert_deduplication_token: token } }),
    });
  }

  /** Returns the rows with the given record ids, each once (read with FINAL). */
  async rowsById(recordIds: readonly string[]): Promise<AuditRow[]> {
    const result = await this.client.query({
      query: `SELECT ${READ_COLUMNS} FROM ${AUDIT_TABLE} FINAL WHERE record_id IN (${recordIds.map(quoteString).join(',')}) ORDER BY sequence`,
      format: 'JSONEachRow',
    });
    return (await result.json<AuditRow>()).map(numericRow);
  }

  /** Returns every row in chain order, each record once (read with FINAL). */
  async allRows(): Promise<AuditRow[]> {
    const result = await this.client.query({
      query: `SELECT ${READ_COLUMNS} FROM ${AUDIT_TABLE} FINAL ORDER BY sequence`,
      format: 'JSONEachRow',
    });
    return (await result.json<AuditRow>()).map(numericRow);
  }

  /** Counts rows with FINAL (each record once) and without it (every stored copy). */
  async counts(): Promise<{ distinct: number; stored: number }> {
    const result = await this.client.query({
      query: `SELECT (SELECT count() FROM ${AUDIT_TABLE} FINAL) AS distinct_rows, (SELECT count() FROM ${AUDIT_TABLE}) AS stored_rows`,
      format: 'JSONEachRow',
    });
    const [row] = await result.json<{
      distinct_rows: string | number;
      stored_rows: string | number;
    }>();
    return { distinct: Number(row?.distinct_rows ?? 0), stored: Number(row?.stored_rows ?? 0) };
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/**
 * Applies a schema file: statements separated by `;`, line comments removed first. Every
 * statement must be idempotent (`CREATE … IF NOT EXISTS`).
 */
export async function applySchema(client: ClickHouseClient, sql: string): Promise<number> {
  const statements = sql
    .split('\n')
    .map((line) => line.replace(/--.*$/, ''))
    .join('\n')
    .split(';')
    .map((statement) => statement.trim())
    .filter((statement) => statement.length > 0);
  for (const statement of statements) {
    await client.command({ query: statement });
  }
  return statements.length;
}

function batchToken(records: readonly AuditRecord[]): string {
  const hash = createHash('sha256');
  for (const record of records) {
    hash.update(record.recordId).update('\n');
  }
  return hash.digest('hex');
}

// UInt64 and UInt32 columns arrive as strings in JSON output; these values fit a double.
function numericRow(row: AuditRow): AuditRow {
  return {
    ...row,
    time: Number(row.time),
    sequence: Number(row.sequence),
    source_sequence: Number(row.source_sequence),
    schema_version: Number(row.schema_version),
  };
}

function quoteString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
