import { canonicalJson } from './canonical.ts';
import { GENESIS_HASH, chainHash, recordId } from './chain.ts';
import { recordBody, type AuditRecord, type AuditRecordBody } from './record.ts';

/** The last verified link: where a chain (or a verified segment of it) ends. */
export interface ChainPosition {
  sequence: number;
  hash: string;
}

/** Check that failed at a broken link. */
export type ChainBreakKind = 'sequence' | 'prevHash' | 'recordId' | 'hash' | 'canonical' | 'parse';

/** The first broken link found by {@link verifyChain}: which record, which check, expected vs found. */
export interface ChainBreak {
  /** Index of the offending record in the input array. */
  index: number;
  /** The chain sequence that was expected at this index. */
  sequence: number;
  kind: ChainBreakKind;
  expected: string;
  found: string;
  message: string;
}

/** Result of verifying a chain or segment; on success `head` is the last record's position. */
export type ChainVerification =
  | { ok: true; verified: number; head: ChainPosition }
  | { ok: false; verified: number; break: ChainBreak };

/** Verification options: `after` is a trusted position to start from instead of genesis. */
export interface VerifyOptions {
  after?: ChainPosition;
}

/** A record as a sink stores it: the exact canonical body text and the hash stored beside it. */
export interface StoredRecord {
  canonical: string;
  hash: string;
}

/**
 * Verifies that records form an unbroken chain and reports the first broken link.
 *
 * Each record must have the next sequence, point at the previous record's hash, carry
 * the id derived from its source position, and have `hash` equal to SHA-256 over the
 * previous hash bytes and its RFC 8785 body. Records must be given in chain order.
 */
export function verifyChain(
  records: readonly AuditRecord[],
  options: VerifyOptions = {},
): ChainVerification {
  return verifyLinks(
    records.map((record) => ({
      body: recordBody(record),
      canonical: canonicalJson(recordBody(record)),
      hash: record.hash,
    })),
    options,
  );
}

/**
 * Verifies records read back from storage, hashing the stored canonical text exactly as
 * stored. A stored text that is not in RFC 8785 form is itself a broken link, because
 * the hash must be reproducible from a re-canonicalized body.
 */
export function verifyStoredChain(
  rows: readonly StoredRecord[],
  options: VerifyOptions = {},
): ChainVerification {
  const links: Link[] = [];
  let start = options.after ?? { sequence: 0, hash: GENESIS_HASH };

  for (const [index, row] of rows.entries()) {
    let body: AuditRecordBody;
    try {
      body = JSON.parse(row.canonical) as AuditRecordBody;
    } catch (error) {
      // Verify what parsed so far, then report the unparseable row as the break.
      const prefix = verifyLinks(links, options);
      if (!prefix.ok) {
        return prefix;
      }
      start = prefix.head;
      return brokenAt(
        index,
        start.sequence + 1,
        prefix.verified,
        'parse',
        'JSON text',
        String(error),
      );
    }
    links.push({ body, canonical: row.canonical, hash: row.hash });
  }

  return verifyLinks(links, options);
}

interface Link {
  body: AuditRecordBody;
  canonical: string;
  hash: string;
}

function verifyLinks(links: readonly Link[], options: VerifyOptions): ChainVerification {
  let previous: ChainPosition = options.after ?? { sequence: 0, hash: GENESIS_HASH };

  for (const [index, link] of links.entries()) {
    const expectedSequence = previous.sequence + 1;
    const { body } = link;

    if (body.sequence !== expectedSequence) {
      return brokenAt(
        index,
        expectedSequence,
        index,
        'sequence',
        String(expectedSequence),
        String(body.sequence),
      );
    }
    if (body.prevHash !== previous.hash) {
      return brokenAt(
        index,
        expectedSequence,
        index,
        'prevHash',
        previous.hash,
        String(body.prevHash),
      );
    }

    const expectedId = recordId(body.source.stream, body.source.sequence);
    if (body.recordId !== expectedId) {
      return brokenAt(
        index,
        expectedSequence,
        index,
        'recordId',
        expectedId,
        String(body.recordId),
      );
    }

    const recanonical = canonicalJson(body);
    if (recanonical !== link.canonical) {
      return brokenAt(index, expectedSequence, index, 'canonical', recanonical, link.canonical);
    }

    const expectedHash = chainHash(previous.hash, link.canonical);
    if (link.hash !== expectedHash) {
      return brokenAt(index, expectedSequence, index, 'hash', expectedHash, link.hash);
    }

    previous = { sequence: body.sequence, hash: link.hash };
  }

  return { ok: true, verified: links.length, head: previous };
}

function brokenAt(
  index: number,
  sequence: number,
  verified: number,
  kind: ChainBreakKind,
  expected: string,
  found: string,
): ChainVerification {
  const message = `audit chain broken at sequence ${sequence}: ${kind} mismatch, expected ${expected}, found ${found}`;
  return { ok: false, verified, break: { index, sequence, kind, expected, found, message } };
}

/** Raised by {@link decodeRecord} for bytes that are not a self-consistent audit record. */
export class InvalidAuditRecordError extends Error {
  override readonly name = 'InvalidAuditRecordError';
}

/**
 * Decodes an audit record as published on `KMS_AUDIT` and checks that its id matches its
 * source position and its hash matches its body and `prevHash`. Sinks store only records
 * that pass, so a corrupted message never becomes evidence.
 *
 * @throws InvalidAuditRecordError naming what is wrong.
 */
export function decodeRecord(data: Uint8Array | string): AuditRecord {
  let record: AuditRecord;
  try {
    record = JSON.parse(
      typeof data === 'string' ? data : new TextDecoder().decode(data),
    ) as AuditRecord;
  } catch (error) {
    throw new InvalidAuditRecordError('audit record is not valid JSON', { cause: error });
  }
  if (
    typeof record !== 'object' ||
    record === null ||
    typeof record.source !== 'object' ||
    record.source === null
  ) {
    throw new InvalidAuditRecordError('audit record is missing its source');
  }

  let expectedId: string;
  let expectedHash: string;
  try {
    expectedId = recordId(record.source.stream, record.source.sequence);
    expectedHash = chainHash(record.prevHash, canonicalJson(recordBody(record)));
  } catch (error) {
    throw new InvalidAuditRecordError(
      `audit record ${String(record.recordId)} is malformed: ${String(error)}`,
      { cause: error },
    );
  }
  if (record.recordId !== expectedId) {
    throw new InvalidAuditRecordError(
      `audit record id mismatch: expected ${expectedId}, found ${String(record.recordId)}`,
    );
  }
  if (record.hash !== expectedHash) {
    throw new InvalidAuditRecordError(
      `audit record ${record.recordId} hash mismatch: expected ${expectedHash}, found ${String(record.hash)}`,
    );
  }
  return record;
}
