import { deriveKeyId, deriveOperationId, fullType, MESSAGES } from '../src/index.ts';

/** One valid data sample for every message type, keyed by full type. */

const commandId = '01JEXAMPLE0000000000000001';
const keyId = deriveKeyId(commandId);
const operationId = deriveOperationId(commandId);
const outcome = {
  keyId,
  commandId,
  operationId,
  provider: 'hsm',
  sequence: 1,
  native: { objectClass: 'CKO_SECRET_KEY' },
};
const keySummary = {
  purpose: 'encrypt',
  algorithm: 'AES_256',
  label: 'orders-kek',
  tags: { team: 'payments' },
};
const operation = {
  operationId,
  commandId,
  keyId,
  provider: 'hsm',
  sequence: 2,
  version: 2,
  key: keySummary,
  params: { keyId },
  versions: [{ version: 1, nativeId: 'hsm-obj-1', state: 'enabled' }],
};

const samples: Record<string, unknown> = {
  'keytower.command.key.create.v1': {
    provider: 'hsm',
    purpose: 'encrypt',
    algorithm: 'AES_256',
    label: 'orders-kek',
  },
  'keytower.command.key.rotate.v1': { keyId },
  'keytower.command.key.disable.v1': { keyId, version: 1 },
  'keytower.command.key.enable.v1': { keyId, version: 1 },
  'keytower.command.key.schedule-destroy.v1': { keyId, pendingWindowSeconds: 604800 },
  'keytower.command.key.cancel-destroy.v1': { keyId },
  'keytower.command.key.destroy.v1': { keyId },
  'keytower.command.key.import.v1': {
    provider: 'aws',
    purpose: 'encrypt',
    algorithm: 'AES_256',
    label: 'imported',
    wrappedKeyMaterial: 'AAECAwQFBgcICQ==',
    importToken: 'token-1',
  },
  'keytower.command.key.tag.v1': { keyId, tags: { owner: 'payments' } },
  'keytower.command.incident.report.v1': {
    keyId,
    severity: 'high',
    summary: 'key seen in a public repository',
    requestedContainment: 'rotate',
  },
  'keytower.command.approval.grant.v1': {
    commandId,
    decision: 'approve',
    reason: 'change ticket 42 reviewed',
  },
  'keytower.event.key.created.v1': {
    ...outcome,
    ...keySummary,
    version: 1,
    nativeVersionId: 'hsm-obj-1',
    primaryVersion: 1,
  },
  'keytower.event.key.version-created.v1': {
    ...outcome,
    version: 2,
    nativeVersionId: 'hsm-obj-2',
    primaryVersion: 2,
  },
  'keytower.event.key.disabled.v1': { ...outcome, version: 1 },
  'keytower.event.key.enabled.v1': { ...outcome, version: 1 },
  'keytower.event.key.destroy-scheduled.v1': {
    ...outcome,
    destroyAfter: '2026-12-11T10:00:00.000Z',
  },
  'keytower.event.key.destroy-cancelled.v1': outcome,
  'keytower.event.key.destroyed.v1': { ...outcome, versions: [1, 2] },
  'keytower.event.key.imported.v1': {
    ...outcome,
    ...keySummary,
    version: 1,
    nativeVersionId: 'imp-1',
    primaryVersion: 1,
  },
  'keytower.event.key.tagged.v1': { ...outcome, tags: { owner: 'payments' } },
  'keytower.event.key.compromised.v1': {
    keyId,
    incidentId: 'inc_1',
    severity: 'critical',
    summary: 'leaked',
  },
  'keytower.event.command.rejected.v1': {
    commandId,
    commandType: 'keytower.command.key.create.v1',
    keyId,
    code: 'invalid-command',
    message: 'data.algorithm: expected one of "AES_256", "EC_P256", "RSA_3072", received "DES"',
    issues: [
      {
        field: 'data.algorithm',
        expected: 'one of "AES_256", "EC_P256", "RSA_3072"',
        received: '"DES"',
        message: 'data.algorithm: ...',
      },
    ],
  },
  'keytower.event.operation.failed.v1': {
    keyId,
    commandId,
    operationId,
    provider: 'hsm',
    action: 'rotate',
    sequence: 2,
    error: {
      code: 'CKR_DEVICE_ERROR',
      message: 'C_GenerateKey failed with CKR_DEVICE_ERROR',
      retryable: true,
    },
  },
  'keytower.event.incident.opened.v1': {
    incidentId: 'inc_1',
    keyId,
    severity: 'high',
    summary: 'leaked',
    reportedBy: 'user:oncall',
  },
  'keytower.event.approval.requested.v1': {
    commandId,
    keyId,
    action: 'destroy',
    requestedBy: 'user:alice',
    approversRequired: 1,
  },
  'keytower.dlq.message.v1': {
    originalSubject: `kms.op.v1.hsm.create.${keyId}`,
    originalStream: 'KMS_OPERATIONS',
    originalSequence: 7,
    durable: 'connector-hsm',
    headers: { 'Nats-Msg-Id': [operationId] },
    payloadBase64: 'e30=',
    attempts: 3,
    lastError: 'provider call timed out after 5000 ms',
    reason: 'max-deliveries',
    deadLetteredAt: '2026-12-04T10:00:00.000Z',
  },
};

for (const action of [
  'create',
  'rotate',
  'disable',
  'enable',
  'schedule-destroy',
  'cancel-destroy',
  'destroy',
  'import',
  'tag',
]) {
  samples[`keytower.operation.key.${action}.v1`] = { ...operation, action };
}

/** Returns the valid data sample of a message type; throws when the table lacks one. */
export function sampleData(type: string): unknown {
  if (!(type in samples))
    throw new Error(`no sample for ${type}: add one to contracts/test/samples.ts`);
  return samples[type];
}

export const SAMPLE_KEY_ID = keyId;
export const ALL_TYPES = MESSAGES.map((definition) => fullType(definition));
