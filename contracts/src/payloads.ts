import { z } from 'zod';
import { KEY_ID_PATTERN, MESSAGE_ID_PATTERN } from './ids.ts';
import {
  KEY_ACTIONS,
  KEY_ALGORITHMS,
  KEY_PURPOSES,
  MAX_PENDING_WINDOW_SECONDS,
  PROVIDERS,
  TEST_PROFILE_MIN_PENDING_WINDOW_SECONDS,
} from './vocabulary.ts';

/**
 * The data of every v1 command, operation and event. Schemas are strict: an unknown field is
 * an error that names it, never silently ignored.
 */

export const keyIdSchema = z
  .string()
  .regex(KEY_ID_PATTERN, 'a key id like kt_0123456789abcdef01234567');
export const messageIdSchema = z.string().regex(MESSAGE_ID_PATTERN, 'letters, digits, "_" or "-"');
export const providerSchema = z.enum(PROVIDERS);
export const actionSchema = z.enum(KEY_ACTIONS);
export const purposeSchema = z.enum(KEY_PURPOSES);
export const algorithmSchema = z.enum(KEY_ALGORITHMS);
export const versionNumberSchema = z.number().int().min(1);
export const tagsSchema = z
  .record(
    z.string().regex(/^[A-Za-z0-9_.:/-]{1,64}$/, 'a tag name of 1 to 64 letters, digits or _.:/-'),
    z.string().max(256),
  )
  .refine((tags) => Object.keys(tags).length <= 50, 'at most 50 tags');
export const labelSchema = z.string().min(1).max(128);
/** Native provider state, as returned by the call that did the work. Never key material. */
export const nativeStateSchema = z.record(z.string(), z.unknown());

// Commands

export const createCommandSchema = z
  .object({
    provider: providerSchema,
    purpose: purposeSchema,
    algorithm: algorithmSchema,
    label: labelSchema,
    tags: tagsSchema.optional(),
  })
  .strict();

export const rotateCommandSchema = z.object({ keyId: keyIdSchema }).strict();

export const versionCommandSchema = z
  .object({ keyId: keyIdSchema, version: versionNumberSchema })
  .strict();

export const scheduleDestroyCommandSchema = z
  .object({
    keyId: keyIdSchema,
    /** Policy enforces the deployment's floor (7 days unless a test profile is set explicitly). */
    pendingWindowSeconds: z
      .number()
      .int()
      .min(TEST_PROFILE_MIN_PENDING_WINDOW_SECONDS)
      .max(MAX_PENDING_WINDOW_SECONDS)
      .optional(),
  })
  .strict();

export const keyOnlyCommandSchema = z.object({ keyId: keyIdSchema }).strict();

export const importCommandSchema = z
  .object({
    provider: providerSchema,
    purpose: purposeSchema,
    algorithm: algorithmSchema,
    label: labelSchema,
    tags: tagsSchema.optional(),
    /** Key material wrapped for the target provider's import key, base64. Audit keeps only its hash. */
    wrappedKeyMaterial: z.base64().max(16384),
    /** The provider's import token or wrapping key reference the material was wrapped for. */
    importToken: z.string().min(1).max(8192),
  })
  .strict();

export const tagCommandSchema = z.object({ keyId: keyIdSchema, tags: tagsSchema }).strict();

export const incidentReportCommandSchema = z
  .object({
    keyId: keyIdSchema,
    severity: z.enum(['low', 'medium', 'high', 'critical']),
    summary: z.string().min(1).max(2000),
    /** Containment the reporter requests. The incident service plans the steps. */
    requestedContainment: z.enum(['disable', 'rotate', 'destroy']),
  })
  .strict();

export const approvalGrantCommandSchema = z
  .object({
    /** The command id awaiting approval. */
    commandId: messageIdSchema,
    decision: z.enum(['approve', 'deny']),
    reason: z.string().min(1).max(2000),
  })
  .strict();

// Operations (policy → connector)

export const operationVersionSchema = z
  .object({
    version: versionNumberSchema,
    nativeId: z.string().min(1),
    state: z.enum(['enabled', 'disabled', 'destroyed']),
  })
  .strict();

export const operationDataSchema = z
  .object({
    operationId: messageIdSchema,
    commandId: messageIdSchema,
    action: actionSchema,
    keyId: keyIdSchema,
    provider: providerSchema,
    /** The per-key sequence number the outcome event must carry. */
    sequence: z.number().int().min(1),
    /** The version this operation creates (create, rotate) or acts on (disable, enable). */
    version: versionNumberSchema.optional(),
    key: z
      .object({
        purpose: purposeSchema,
        algorithm: algorithmSchema,
        label: labelSchema,
        tags: tagsSchema,
      })
      .strict(),
    /** The command's own data, as admitted. */
    params: z.record(z.string(), z.unknown()),
    versions: z.array(operationVersionSchema),
    /** For schedule-destroy: when the pending window ends, as policy computed it. */
    destroyAfter: z.iso.datetime({ offset: true }).optional(),
  })
  .strict();

// Events (connector → everyone)

const outcomeBase = {
  keyId: keyIdSchema,
  commandId: messageIdSchema,
  operationId: messageIdSchema,
  provider: providerSchema,
  sequence: z.number().int().min(1),
  native: nativeStateSchema,
};

export const keyCreatedEventSchema = z
  .object({
    ...outcomeBase,
    purpose: purposeSchema,
    algorithm: algorithmSchema,
    label: labelSchema,
    tags: tagsSchema,
    version: versionNumberSchema,
    nativeVersionId: z.string().min(1),
    primaryVersion: versionNumberSchema,
  })
  .strict();

export const versionCreatedEventSchema = z
  .object({
    ...outcomeBase,
    version: versionNumberSchema,
    nativeVersionId: z.string().min(1),
    primaryVersion: versionNumberSchema,
  })
  .strict();

export const versionStateEventSchema = z
  .object({ ...outcomeBase, version: versionNumberSchema })
  .strict();

export const destroyScheduledEventSchema = z
  .object({ ...outcomeBase, destroyAfter: z.iso.datetime({ offset: true }) })
  .strict();

export const destroyCancelledEventSchema = z.object(outcomeBase).strict();

export const destroyedEventSchema = z
  .object({ ...outcomeBase, versions: z.array(versionNumberSchema) })
  .strict();

export const importedEventSchema = z
  .object({
    ...outcomeBase,
    purpose: purposeSchema,
    algorithm: algorithmSchema,
    label: labelSchema,
    tags: tagsSchema,
    version: versionNumberSchema,
    nativeVersionId: z.string().min(1),
    primaryVersion: versionNumberSchema,
  })
  .strict();

export const taggedEventSchema = z.object({ ...outcomeBase, tags: tagsSchema }).strict();

export const compromisedEventSchema = z
  .object({
    keyId: keyIdSchema,
    incidentId: messageIdSchema,
    severity: z.enum(['low', 'medium', 'high', 'critical']),
    summary: z.string().min(1).max(2000),
  })
  .strict();

export const REJECTION_CODES = [
  'invalid-command',
  'unknown-message-type',
  'not-authorized',
  'key-not-found',
  'key-exists',
  'invalid-state',
  'version-not-found',
  'operation-in-progress',
  'rotation-in-progress',
  'pending-window-not-passed',
  'pending-window-out-of-range',
  'not-supported',
  'provider-unavailable',
] as const;
export type RejectionCode = (typeof REJECTION_CODES)[number];

export const contractIssueSchema = z
  .object({ field: z.string(), expected: z.string(), received: z.string(), message: z.string() })
  .strict();

export const commandRejectedEventSchema = z
  .object({
    commandId: z.string().min(1),
    /** The command's type, when it could be read. */
    commandType: z.string().nullable(),
    keyId: z.string().nullable(),
    code: z.enum(REJECTION_CODES),
    message: z.string().min(1),
    issues: z.array(contractIssueSchema),
  })
  .strict();

export const operationFailedEventSchema = z
  .object({
    keyId: keyIdSchema,
    commandId: messageIdSchema,
    operationId: messageIdSchema,
    provider: providerSchema,
    action: actionSchema,
    sequence: z.number().int().min(1),
    error: z
      .object({ code: z.string().min(1), message: z.string().min(1), retryable: z.boolean() })
      .strict(),
  })
  .strict();

export const incidentOpenedEventSchema = z
  .object({
    incidentId: messageIdSchema,
    keyId: keyIdSchema,
    severity: z.enum(['low', 'medium', 'high', 'critical']),
    summary: z.string().min(1).max(2000),
    reportedBy: z.string().min(1),
  })
  .strict();

export const approvalRequestedEventSchema = z
  .object({
    commandId: messageIdSchema,
    keyId: keyIdSchema.nullable(),
    action: z.string().min(1),
    requestedBy: z.string().min(1),
    /** Approvers must differ from the requester and from each other. */
    approversRequired: z.number().int().min(1),
  })
  .strict();

// Dead letters

export const deadLetterSchema = z
  .object({
    originalSubject: z.string().min(1),
    originalStream: z.string().min(1),
    originalSequence: z.number().int().min(1),
    durable: z.string().min(1),
    headers: z.record(z.string(), z.array(z.string())),
    payloadBase64: z.string(),
    attempts: z.number().int().min(0),
    lastError: z.string(),
    reason: z.enum(['handler-failed', 'max-deliveries']),
    deadLetteredAt: z.iso.datetime({ offset: true }),
  })
  .strict();

export type CreateCommand = z.infer<typeof createCommandSchema>;
export type RotateCommand = z.infer<typeof rotateCommandSchema>;
export type VersionCommand = z.infer<typeof versionCommandSchema>;
export type ScheduleDestroyCommand = z.infer<typeof scheduleDestroyCommandSchema>;
export type KeyOnlyCommand = z.infer<typeof keyOnlyCommandSchema>;
export type ImportCommand = z.infer<typeof importCommandSchema>;
export type TagCommand = z.infer<typeof tagCommandSchema>;
export type IncidentReportCommand = z.infer<typeof incidentReportCommandSchema>;
export type ApprovalGrantCommand = z.infer<typeof approvalGrantCommandSchema>;
export type OperationData = z.infer<typeof operationDataSchema>;
export type KeyCreatedEvent = z.infer<typeof keyCreatedEventSchema>;
export type VersionCreatedEvent = z.infer<typeof versionCreatedEventSchema>;
export type VersionStateEvent = z.infer<typeof versionStateEventSchema>;
export type DestroyScheduledEvent = z.infer<typeof destroyScheduledEventSchema>;
export type DestroyCancelledEvent = z.infer<typeof destroyCancelledEventSchema>;
export type DestroyedEvent = z.infer<typeof destroyedEventSchema>;
export type CommandRejectedEvent = z.infer<typeof commandRejectedEventSchema>;
export type OperationFailedEvent = z.infer<typeof operationFailedEventSchema>;
export type DeadLetter = z.infer<typeof deadLetterSchema>;
