import type { KeyAction, KeyEventName, ProviderName } from './vocabulary.ts';

/**
 * Every subject keytower publishes or subscribes to. Subjects end with the key id so one
 * key's traffic can be watched or filtered. No other package spells a subject by hand.
 */

/** The token used in place of a key id when a rejected message names no readable key id. */
export const UNKNOWN_KEY_TOKEN = '_';

export const SUBJECT_ROOTS = {
  commands: 'kms.cmd.v1',
  operations: 'kms.op.v1',
  events: 'kms.evt.v1',
  deadLetters: 'kms.dlq.v1',
  audit: 'kms.audit.v1',
} as const;

/** The JetStream advisory published when a message reaches its consumer's max deliveries. */
export const MAX_DELIVERIES_ADVISORY_ROOT = '$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES';

function token(value: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(value)) {
    throw new Error(`invalid subject token "${value}": expected letters, digits, "_" or "-"`);
  }
  return value;
}

export const subjects = {
  /** `kms.cmd.v1.key.<action>.<keyId>` */
  command(action: KeyAction, keyId: string): string {
    return `${SUBJECT_ROOTS.commands}.key.${action}.${token(keyId)}`;
  },
  /** `kms.op.v1.<provider>.<action>.<keyId>` */
  operation(provider: ProviderName, action: KeyAction, keyId: string): string {
    return `${SUBJECT_ROOTS.operations}.${provider}.${action}.${token(keyId)}`;
  },
  /** `kms.evt.v1.key.<event>.<keyId>` */
  keyEvent(event: KeyEventName, keyId: string): string {
    return `${SUBJECT_ROOTS.events}.key.${event}.${token(keyId)}`;
  },
  /** `kms.evt.v1.command.rejected.<keyId>`, with `_` when the key id is unknown. */
  commandRejected(keyId: string | null): string {
    return `${SUBJECT_ROOTS.events}.command.rejected.${safeKeyToken(keyId)}`;
  },
  /** `kms.evt.v1.operation.failed.<keyId>` */
  operationFailed(keyId: string): string {
    return `${SUBJECT_ROOTS.events}.operation.failed.${token(keyId)}`;
  },
  /** `kms.dlq.v1.<stream>.<durable>` */
  deadLetter(stream: string, durable: string): string {
    return `${SUBJECT_ROOTS.deadLetters}.${token(stream)}.${token(durable)}`;
  },
  /** `kms.cmd.v1.incident.report.<keyId>` */
  incidentReport(keyId: string): string {
    return `${SUBJECT_ROOTS.commands}.incident.report.${token(keyId)}`;
  },
  /** `kms.cmd.v1.approval.grant.<keyId>`, with `_` when the command awaiting approval has no key. */
  approvalGrant(keyId: string | null): string {
    return `${SUBJECT_ROOTS.commands}.approval.grant.${safeKeyToken(keyId)}`;
  },
  /** `kms.evt.v1.incident.opened.<keyId>` */
  incidentOpened(keyId: string): string {
    return `${SUBJECT_ROOTS.events}.incident.opened.${token(keyId)}`;
  },
  /** `kms.evt.v1.approval.requested.<keyId>` */
  approvalRequested(keyId: string | null): string {
    return `${SUBJECT_ROOTS.events}.approval.requested.${safeKeyToken(keyId)}`;
  },
  /** The one subject every audit record is published on. */
  auditRecord: `${SUBJECT_ROOTS.audit}.record`,
  /** The max-deliveries advisory of one durable consumer. */
  maxDeliveriesAdvisory(stream: string, durable: string): string {
    return `${MAX_DELIVERIES_ADVISORY_ROOT}.${token(stream)}.${token(durable)}`;
  },

  /** Wildcards for subscriptions and permissions. */
  all: {
    commands: `${SUBJECT_ROOTS.commands}.>`,
    operations: `${SUBJECT_ROOTS.operations}.>`,
    providerOperations: (provider: ProviderName) => `${SUBJECT_ROOTS.operations}.${provider}.>`,
    events: `${SUBJECT_ROOTS.events}.>`,
    keyEvents: `${SUBJECT_ROOTS.events}.key.>`,
    rejections: `${SUBJECT_ROOTS.events}.command.rejected.>`,
    incidentEvents: `${SUBJECT_ROOTS.events}.incident.>`,
    compromisedEvents: `${SUBJECT_ROOTS.events}.key.compromised.>`,
    operationFailures: `${SUBJECT_ROOTS.events}.operation.failed.>`,
    deadLetters: `${SUBJECT_ROOTS.deadLetters}.>`,
    audit: `${SUBJECT_ROOTS.audit}.>`,
    maxDeliveriesAdvisories: `${MAX_DELIVERIES_ADVISORY_ROOT}.>`,
  },
} as const;

/** Returns a subject token for a key id, or `_` when it is missing or not a valid token. */
export function safeKeyToken(keyId: string | null | undefined): string {
  return keyId && /^[A-Za-z0-9_-]{1,64}$/.test(keyId) ? keyId : UNKNOWN_KEY_TOKEN;
}

/** Reads the key id (last token) from any key-scoped keytower subject. */
export function keyIdFromSubject(subject: string): string | null {
  const last = subject.split('.').at(-1);
  return last && last !== UNKNOWN_KEY_TOKEN ? last : null;
}
