import { canonicalJson } from './canonical.ts';
import { chainHash, isHashHex, recordId } from './chain.ts';

/** Version of the audit record layout; part of the hashed body. */
export const AUDIT_SCHEMA_VERSION = 1;

/** Position of the source message that an audit record describes. */
export interface AuditSource {
  /** JetStream stream the writer read (normally `KMS_AUDIT_IN`). */
  stream: string;
  /** The message's sequence in that stream. */
  sequence: number;
  /** The NATS subject the message was published on. */
  subject: string;
}

/** Envelope fields copied to the top of the record for queries; `null` where the source lacks them. */
export interface AuditMessageSummary {
  id: string | null;
  type: string | null;
  actor: string | null;
  subject: string | null;
  correlationid: string | null;
  causationid: string | null;
}

/** Source bytes that were not valid JSON, kept so nothing arriving is lost from the trail. */
export interface UnparseableEnvelope {
  unparseable: true;
  base64: string;
  parseError: string;
}

/** The source envelope's signature and whether it verified. */
export interface AuditSignature {
  present: boolean;
  /** The JWS from the envelope's `signature` field, or `null` when it had none. */
  jws: string | null;
  // NOTE: signatures are not verified yet, so every record carries `verified: null`
  // ("not checked"), never `true` or `false`.
  verified: boolean | null;
}

/** The hashed part of an audit record: everything except `hash`. */
export interface AuditRecordBody {
  recordId: string;
  /** 1-based position in the chain. */
  sequence: number;
  /** The source message's time (its envelope `time`, else the JetStream store time), ISO 8601 UTC. */
  time: string;
  source: AuditSource;
  message: AuditMessageSummary;
  /** The key the message concerns, or `null` when it names none. */
  keyId: string | null;
  /** The source message as parsed JSON, minus redacted fields, or its raw bytes when unparseable. */
  envelope: unknown;
  signature: AuditSignature;
  /** JSON paths of fields removed because their names denote secrets; empty when none. */
  redactedFields: string[];
  schemaVersion: typeof AUDIT_SCHEMA_VERSION;
  /** Hash of the previous record, or `GENESIS_HASH` for the first. */
  prevHash: string;
}

/** An audit record: its body plus `hash` = SHA-256(prevHash bytes || RFC 8785 body bytes). */
export interface AuditRecord extends AuditRecordBody {
  hash: string;
}

/** Input of {@link buildRecord}: the raw source message and the chain position it takes. */
export interface BuildRecordInput {
  source: AuditSource;
  /** The source message payload exactly as stored in the stream. */
  data: Uint8Array;
  /** When JetStream stored the source message; used when the envelope has no valid `time`. */
  storedAt: Date;
  /** Chain position of the new record (the previous record's sequence + 1). */
  sequence: number;
  /** Hash of the previous record, or `GENESIS_HASH` for sequence 1. */
  prevHash: string;
}

// Field names that denote secrets, compared after lower-casing and removing `_` and `-`.
// Source messages carry none by contract; this is the second line of defence.
const SECRET_FIELD_NAMES = new Set([
  'keymaterial',
  'plaintext',
  'pin',
  'sopin',
  'userpin',
  'password',
  'passphrase',
  'privatekey',
]);

const KEY_ID = /^kt_[0-9a-z]+$/;

/**
 * Builds the next audit record for a source message and computes its hash.
 *
 * The record id comes from the source position alone (see `recordId`), so building the
 * record for the same message twice yields the same id. Fields whose names denote secrets
 * (key material, plaintext, PINs, passwords) are removed from the copied envelope and their
 * paths listed in `redactedFields`.
 *
 * @throws TypeError when the sequence is not a positive integer or `prevHash` is not a hash,
 *   or when sequence 1 does not start from `GENESIS_HASH`.
 */
export function buildRecord(input: BuildRecordInput): AuditRecord {
  if (!Number.isSafeInteger(input.sequence) || input.sequence < 1) {
    throw new TypeError(
      `audit record build failed: sequence must be a positive integer, received ${input.sequence}`,
    );
  }
  if (!isHashHex(input.prevHash)) {
    throw new TypeError('audit record build failed: prevHash must be 64 lowercase hex digits');
  }

  const parsed = parseSource(input.data);
  const redactedFields: string[] = [];
  const envelope = parsed.ok
    ? redactSecrets(parsed.value, '$', redactedFields)
    : parsed.unparseable;
  const fields = parsed.ok && isPlainObject(parsed.value) ? parsed.value : {};

  const message: AuditMessageSummary = {
    id: stringOrNull(fields.id),
    type: stringOrNull(fields.type),
    actor: stringOrNull(fields.actor),
    subject: stringOrNull(fields.subject),
    correlationid: stringOrNull(fields.correlationid),
    causationid: stringOrNull(fields.causationid),
  };
  const jws = stringOrNull(fields.signature);

  const body: AuditRecordBody = {
    recordId: recordId(input.source.stream, input.source.sequence),
    sequence: input.sequence,
    time: recordTime(fields.time, input.storedAt),
    source: {
      stream: input.source.stream,
      sequence: input.source.sequence,
      subject: input.source.subject,
    },
    message,
    keyId: keyIdOf(message.subject, input.source.subject),
    envelope,
    signature: { present: jws !== null, jws, verified: null },
    redactedFields,
    schemaVersion: AUDIT_SCHEMA_VERSION,
    prevHash: input.prevHash,
  };

  return { ...body, hash: chainHash(body.prevHash, canonicalJson(body)) };
}

/** Returns the record without `hash`: the part that is canonicalized and hashed. */
export function recordBody(record: AuditRecord): AuditRecordBody {
  const { hash: _hash, ...body } = record;
  return body;
}

/** Returns the RFC 8785 text of a record's body, the exact bytes its hash covers. */
export function canonicalRecord(record: AuditRecord | AuditRecordBody): string {
  return canonicalJson('hash' in record ? recordBody(record) : record);
}

type ParsedSource = { ok: true; value: unknown } | { ok: false; unparseable: UnparseableEnvelope };

function parseSource(data: Uint8Array): ParsedSource {
  const base64 = Buffer.from(data).toString('base64');

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    return {
      ok: false,
      unparseable: { unparseable: true, base64, parseError: 'payload is not valid UTF-8' },
    };
  }

  try {
    const value: unknown = JSON.parse(text);
    // A value that parses but cannot be canonicalized (a lone surrogate in a string) is
    // kept as raw bytes too, so the record can always be hashed.
    canonicalJson(value);
    return { ok: true, value };
  } catch {
    // A fixed message, not the parser's own text, because the parser's wording changes
    // between Node versions and the message is part of the hashed record.
    return {
      ok: false,
      unparseable: { unparseable: true, base64, parseError: 'payload is not valid JSON' },
    };
  }
}

function redactSecrets(value: unknown, path: string, redacted: string[]): unknown {
  if (Array.isArray(value)) {
    return value.map((item, index) => redactSecrets(item, `${path}[${index}]`, redacted));
  }
  if (!isPlainObject(value)) {
    return value;
  }

  const copy: Record<string, unknown> = {};
  for (const [name, child] of Object.entries(value)) {
    const childPath = `${path}.${name}`;
    if (SECRET_FIELD_NAMES.has(name.toLowerCase().replace(/[_-]/g, ''))) {
      redacted.push(childPath);
      continue;
    }
    copy[name] = redactSecrets(child, childPath, redacted);
  }
  return copy;
}

function recordTime(envelopeTime: unknown, storedAt: Date): string {
  if (typeof envelopeTime === 'string') {
    const parsed = new Date(envelopeTime);
    if (Number.isFinite(parsed.getTime())) {
      return parsed.toISOString();
    }
  }
  return storedAt.toISOString();
}

// The envelope's `subject` is the key id by contract. A message without one (a rejected
// command for an unknown key uses `_`) falls back to the last token of the NATS subject.
function keyIdOf(envelopeSubject: string | null, natsSubject: string): string | null {
  if (envelopeSubject !== null && KEY_ID.test(envelopeSubject)) {
    return envelopeSubject;
  }
  const lastToken = natsSubject.slice(natsSubject.lastIndexOf('.') + 1);
  return KEY_ID.test(lastToken) ? lastToken : null;
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
