import type { z } from 'zod';
import { type Envelope, envelopeBaseSchema } from './envelope.ts';
import { newCommandId } from './ids.ts';
import { fullType, type MessageDefinition, messageDefinition, versionsOf } from './messages.ts';

/**
 * Parsing of keytower messages: a typed envelope, or an error naming the field, what was
 * expected and what was received.
 */

/** One problem found in a message. */
export interface ContractIssue {
  /** Dotted path of the field, e.g. `data.algorithm`; `(message)` for the whole message. */
  field: string;
  expected: string;
  received: string;
  message: string;
}

/** Reason a message did not match the contracts. `message` is the first issue, readable alone. */
export interface ContractError {
  field: string;
  expected: string;
  received: string;
  message: string;
  issues: ContractIssue[];
  /** The type named by the message, when it could be read. */
  type: string | null;
  /** For an unknown version: the versions of that type that exist. */
  knownVersions?: number[];
}

export type ParseResult =
  | { ok: true; message: Envelope; definition: MessageDefinition }
  | { ok: false; error: ContractError };

/** Thrown by `buildEnvelope` and `assertMessage` when a message does not match its contract. */
export class ContractViolation extends Error {
  readonly contractError: ContractError;

  constructor(contractError: ContractError) {
    super(contractError.message);
    this.name = 'ContractViolation';
    this.contractError = contractError;
  }
}

const RECEIVED_MAX_LENGTH = 80;

function describeReceived(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text =
    typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  return text.length > RECEIVED_MAX_LENGTH ? `${text.slice(0, RECEIVED_MAX_LENGTH - 3)}...` : text;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let current = root;
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[segment];
  }
  return current;
}

function describeExpected(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.expected;
    case 'invalid_value':
      return issue.values.length === 1
        ? JSON.stringify(issue.values[0])
        : `one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    case 'too_small':
      return `${issue.origin === 'string' ? 'length ' : ''}${issue.inclusive === false ? '>' : '>='} ${String(issue.minimum)}`;
    case 'too_big':
      return `${issue.origin === 'string' ? 'length ' : ''}${issue.inclusive === false ? '<' : '<='} ${String(issue.maximum)}`;
    case 'unrecognized_keys':
      return 'no other fields';
    case 'invalid_format':
      return issue.message && !issue.message.startsWith('Invalid')
        ? issue.message
        : `a ${issue.format}`;
    default:
      return issue.message;
  }
}

function toIssues(
  zodIssues: readonly z.core.$ZodIssue[],
  root: unknown,
  prefix: string[],
): ContractIssue[] {
  return zodIssues.flatMap((issue): ContractIssue[] => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => {
        const field = [...prefix, ...issue.path.map(String), key].join('.');
        return {
          field,
          expected: 'no other fields',
          received: describeReceived(valueAt(root, [...issue.path, key])),
          message: `${field}: unknown field, remove it`,
        };
      });
    }
    const field = [...prefix, ...issue.path.map(String)].join('.') || '(message)';
    const received =
      issue.code === 'invalid_type' && valueAt(root, issue.path) === undefined
        ? 'nothing'
        : describeReceived(valueAt(root, issue.path));
    const expected = describeExpected(issue);
    return [
      {
        field,
        expected,
        received,
        message: `${field}: expected ${expected}, received ${received}`,
      },
    ];
  });
}

function failure(
  issues: ContractIssue[],
  type: string | null,
  knownVersions?: number[],
): ParseResult {
  const first = issues[0] ?? {
    field: '(message)',
    expected: 'a keytower message',
    received: 'nothing',
    message: '(message): expected a keytower message, received nothing',
  };
  return {
    ok: false,
    error: { ...first, issues, type, ...(knownVersions ? { knownVersions } : {}) },
  };
}

function decodeJson(
  input: string | Uint8Array | unknown,
): { ok: true; value: unknown } | { ok: false; issue: ContractIssue } {
  if (typeof input !== 'string' && !(input instanceof Uint8Array))
    return { ok: true, value: input };
  const text =
    typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: false }).decode(input);
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return {
      ok: false,
      issue: {
        field: '(message)',
        expected: 'a JSON object',
        received: describeReceived(text),
        message: `(message): expected a JSON object, received invalid JSON (${reason})`,
      },
    };
  }
}

function unknownTypeIssue(type: string): { issue: ContractIssue; versions: number[] } {
  const match = /^(.*)\.v([0-9]+)$/.exec(type);
  const name = match?.[1] ?? type;
  const versions = versionsOf(name);
  const expected =
    versions.length > 0
      ? `a version that exists: ${versions.map((version) => `v${version}`).join(', ')}`
      : 'a known keytower message type';
  const message =
    versions.length > 0
      ? `type: unknown version of ${name}, received ${JSON.stringify(type)}; versions that exist: ${versions.map((version) => `v${version}`).join(', ')}`
      : `type: unknown message type ${JSON.stringify(type)}; no version of ${name} exists`;
  return { issue: { field: 'type', expected, received: JSON.stringify(type), message }, versions };
}

/**
 * Parses a message (bytes, text or an already decoded value) against the envelope and the data
 * schema of its type. Never throws.
 */
export function parseMessage(input: string | Uint8Array | unknown): ParseResult {
  const decoded = decodeJson(input);
  if (!decoded.ok) return failure([decoded.issue], null);
  const value = decoded.value;

  const envelope = envelopeBaseSchema.safeParse(value, { reportInput: true });
  const type =
    typeof (value as { type?: unknown } | null)?.type === 'string'
      ? (value as { type: string }).type
      : null;
  if (!envelope.success) return failure(toIssues(envelope.error.issues, value, []), type);

  const definition = messageDefinition(envelope.data.type);
  if (!definition) {
    const { issue, versions } = unknownTypeIssue(envelope.data.type);
    return failure([issue], envelope.data.type, versions);
  }

  const data = definition.data.safeParse(envelope.data.data, { reportInput: true });
  if (!data.success)
    return failure(toIssues(data.error.issues, envelope.data.data, ['data']), envelope.data.type);

  return { ok: true, message: { ...envelope.data, data: data.data }, definition };
}

/** Parses a message and throws `ContractViolation` when it does not match its contract. */
export function assertMessage(input: string | Uint8Array | unknown): {
  message: Envelope;
  definition: MessageDefinition;
} {
  const result = parseMessage(input);
  if (!result.ok) throw new ContractViolation(result.error);
  return { message: result.message, definition: result.definition };
}

export interface BuildEnvelopeOptions<Data> {
  type: string;
  subject: string;
  data: Data;
  actor: string;
  source: string;
  id?: string;
  correlationid?: string;
  causationid?: string;
  time?: Date | string;
  signature?: string;
}

/**
 * Builds and validates an envelope. The id defaults to a new ULID and the correlation id to the
 * message's own id, which starts a new workflow. Throws `ContractViolation` on invalid data.
 */
export function buildEnvelope<Data>(options: BuildEnvelopeOptions<Data>): Envelope<Data> {
  const id = options.id ?? newCommandId();
  const time =
    options.time instanceof Date
      ? options.time.toISOString()
      : (options.time ?? new Date().toISOString());
  const candidate = {
    specversion: '1.0',
    id,
    source: options.source,
    type: options.type,
    time,
    subject: options.subject,
    datacontenttype: 'application/json',
    data: options.data,
    actor: options.actor,
    correlationid: options.correlationid ?? id,
    ...(options.causationid ? { causationid: options.causationid } : {}),
    ...(options.signature ? { signature: options.signature } : {}),
  };
  const { message } = assertMessage(candidate);
  return message as Envelope<Data>;
}

/** Reads the key action from a command or operation type, e.g. `rotate` from `keytower.command.key.rotate.v1`. */
export function actionOfType(type: string): string | null {
  const match = /^keytower\.(?:command|operation)\.key\.([a-z-]+)\.v[0-9]+$/.exec(type);
  return match?.[1] ?? null;
}

export { fullType };
