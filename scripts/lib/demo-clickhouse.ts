/**
 * Reads the audit store in ClickHouse over its HTTP interface. Every read uses `FINAL`, because
 * the sinks deliver at least once and ReplacingMergeTree collapses repeated rows only when it
 * merges. `FINAL` shows each record once before that.
 *
 * Queries are plain SQL text, because ClickHouse 18.16 has no query parameters. So every value
 * placed in a query is a number or a key id first checked against its strict shape.
 */
import type { StackDescriptor } from '@keytower/config';

/** One row of `audit_records` as the checks need it. */
export interface StoredAuditRow {
  recordId: string;
  sequence: number;
  keyId: string;
  messageId: string;
  messageType: string;
  hash: string;
  canonical: string;
}

const KEY_ID = /^kt_[0-9a-f]{1,64}$/;
const QUERY_TIMEOUT_MS = 30_000;

/** Runs a query and returns its rows; the query must end with `FORMAT JSONEachRow`. */
export async function queryClickHouse(
  descriptor: StackDescriptor,
  sql: string,
): Promise<Array<Record<string, unknown>>> {
  const { url, user, password, database } = descriptor.clickhouse;
  const endpoint = new URL(url);
  endpoint.searchParams.set('database', database);
  endpoint.searchParams.set('user', user);
  endpoint.searchParams.set('password', password);

  const response = await fetch(endpoint, {
    method: 'POST',
    body: sql,
    signal: AbortSignal.timeout(QUERY_TIMEOUT_MS),
  });
  const text = await response.text();
  if (!response.ok) {
    throw new Error(
      `ClickHouse query failed with HTTP ${response.status}: ${text.trim().slice(0, 500)}`,
    );
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function keyIdList(keyIds: readonly string[]): string {
  for (const keyId of keyIds) {
    if (!KEY_ID.test(keyId)) {
      throw new Error(
        `invalid key id "${keyId}" for a ClickHouse query: expected kt_ and hex digits`,
      );
    }
  }
  return keyIds.map((keyId) => `'${keyId}'`).join(', ');
}

function toRow(raw: Record<string, unknown>): StoredAuditRow {
  return {
    recordId: String(raw.record_id),
    // ClickHouse quotes 64-bit integers in JSON output by default.
    sequence: Number(raw.sequence),
    keyId: String(raw.key_id),
    messageId: String(raw.message_id),
    messageType: String(raw.message_type),
    hash: String(raw.hash),
    canonical: String(raw.canonical),
  };
}

const ROW_COLUMNS = 'record_id, sequence, key_id, message_id, message_type, hash, canonical';

/** Returns every stored record about the given keys, each once (`FINAL`), in chain order. */
export async function auditRowsForKeys(
  descriptor: StackDescriptor,
  keyIds: readonly string[],
): Promise<StoredAuditRow[]> {
  if (keyIds.length === 0) {
    return [];
  }
  const rows = await queryClickHouse(
    descriptor,
    `SELECT ${ROW_COLUMNS} FROM audit_records FINAL WHERE key_id IN (${keyIdList(keyIds)}) ORDER BY sequence FORMAT JSONEachRow`,
  );
  return rows.map(toRow);
}

/** Returns the whole stored chain, each record once (`FINAL`), ordered by sequence. */
export async function allAuditRows(descriptor: StackDescriptor): Promise<StoredAuditRow[]> {
  const rows = await queryClickHouse(
    descriptor,
    `SELECT ${ROW_COLUMNS} FROM audit_records FINAL ORDER BY sequence FORMAT JSONEachRow`,
  );
  return rows.map(toRow);
}

/** Counts the distinct record ids stored and the rows `FINAL` returns; the two are equal when nothing is doubled. */
export async function countAuditRecords(
  descriptor: StackDescriptor,
): Promise<{ rows: number; distinctRecords: number }> {
  const [row] = await queryClickHouse(
    descriptor,
    'SELECT count() AS rows, uniqExact(record_id) AS distinct_records FROM audit_records FINAL FORMAT JSONEachRow',
  );
  return { rows: Number(row?.rows ?? 0), distinctRecords: Number(row?.distinct_records ?? 0) };
}
