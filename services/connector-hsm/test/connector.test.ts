import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import {
  BUCKETS,
  buildEnvelope,
  deriveKeyId,
  deriveOperationId,
  messageTypes,
  newCommandId,
  subjects,
} from '@keytower/contracts';
import type { KeyAlgorithm, OperationData } from '@keytower/contracts';
import type { Bus } from '@keytower/bus';
import {
  RetryPolicy,
  publishCapabilities,
  startConnectorRuntime,
} from '@keytower/connector-runtime';
import type { ConnectorRuntimeOptions } from '@keytower/connector-runtime';
import { HSM_CAPABILITIES } from '@keytower/provider';

import { HsmKeyProvider } from '../src/adapter.ts';
import { openPkcs11Client } from '../src/client.ts';
import type { Pkcs11Client } from '../src/client.ts';
import { connectAs, countEvents, natsEnvironment, waitForEvents } from '@keytower/testkit';
import type { NatsEnvironment } from '@keytower/testkit';
import {
  SOFTHSM_MODULE,
  createTestToken,
  objectsByLabel,
  silentLogger,
  withTokenSession,
} from './softhsm.ts';
import type { TestToken } from './softhsm.ts';

let token: TestToken;
let client: Pkcs11Client;
let environment: NatsEnvironment;
let admin: Bus;
let policyBus: Bus;

before(async () => {
  token = createTestToken();
  client = openPkcs11Client({
    modulePath: SOFTHSM_MODULE,
    tokenLabel: token.label,
    pin: token.pin,
    logger: silentLogger,
  });
  environment = await natsEnvironment();
  admin = await connectAs(environment, 'admin');
  policyBus = await connectAs(environment, 'policy');
});

after(async () => {
  await policyBus.close();
  await admin.close();
  await environment.stop();
  await client.close();
  token.remove();
});

/** Creates a pino logger that keeps every line, so a test can check what the runtime logged. */
function capturingLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

function createOperation(algorithm: KeyAlgorithm, sequence: number): OperationData {
  const commandId = newCommandId();
  return {
    operationId: deriveOperationId(commandId),
    commandId,
    action: 'create',
    keyId: deriveKeyId(commandId),
    provider: 'hsm',
    sequence,
    version: 1,
    key: {
      purpose: algorithm === 'AES_256' ? 'encrypt' : 'sign',
      algorithm,
      label: 'connector test',
      tags: {},
    },
    params: {},
    versions: [],
  };
}

async function publishOperation(
  operation: OperationData,
  envelopeId = operation.operationId,
): Promise<void> {
  const envelope = buildEnvelope({
    id: envelopeId,
    type: messageTypes.operation(operation.action),
    subject: operation.keyId,
    data: operation,
    actor: 'user:alice',
    source: 'keytower/policy',
    correlationid: operation.commandId,
    causationid: operation.commandId,
  });
  await policyBus.publish(subjects.operation('hsm', operation.action, operation.keyId), envelope);
}

async function withConnector<T>(
  options: Partial<ConnectorRuntimeOptions> & { logger: ConnectorRuntimeOptions['logger'] },
  body: () => Promise<T>,
): Promise<T> {
  const bus = await connectAs(environment, 'connector-hsm');
  const runtime = await startConnectorRuntime({
    bus,
    provider: new HsmKeyProvider({ client }),
    retryPolicy: new RetryPolicy({ initialDelayMs: 50, maxDelayMs: 200 }),
    ...options,
  });
  try {
    return await body();
  } finally {
    await runtime.stop();
    await bus.close();
  }
}

describe('HSM connector on NATS and SoftHSM2', () => {
  it('turns an operation into a created event', async () => {
    const operation = createOperation('EC_P256', 4);
    const { logger, lines } = capturingLogger();

    await withConnector({ logger }, async () => {
      await publishOperation(operation);
      const [event] = await waitForEvents(admin, operation.keyId, 1);

      assert.equal(event?.type, 'keytower.event.key.created.v1');
      const data = event?.data as {
        sequence: number;
        nativeVersionId: string;
        native: { objects: unknown[] };
      };
      assert.equal(data.sequence, 4);
      assert.equal(data.nativeVersionId, Buffer.from(`${operation.keyId}/v1`).toString('hex'));
      assert.equal(data.native.objects.length, 2);
    });

    assert.equal(countObjects(`${operation.keyId}/v1`), 2);
    const started = lines.find((line) => line.msg === 'operation started');
    assert.equal(started?.operationId, operation.operationId);
    assert.equal(started?.commandId, operation.commandId);
    assert.equal(started?.keyId, operation.keyId);
    assert.equal(started?.provider, 'hsm');
  });

  it('makes one object for a redelivered operation', async () => {
    const operation = createOperation('AES_256', 1);
    const { logger, lines } = capturingLogger();
    let failuresLeft = 1;

    await withConnector(
      {
        logger,
        // The first delivery fails after the token made the key, before the event is published.
        afterProviderCall: () => {
          if (failuresLeft > 0) {
            failuresLeft -= 1;
            throw new Error('lost before publishing');
          }
        },
      },
      async () => {
        await publishOperation(operation);
        await waitForEvents(admin, operation.keyId, 1);
        // Policy sends the same operation once more under another message id.
        await publishOperation(operation, `${operation.operationId}-again`);
        for (let waited = 0; waited < 5_000; waited += 50) {
          if (lines.some((line) => line.msg === 'operation outcome already published')) {
            break;
          }
          await sleep(50);
        }
      },
    );

    assert.equal(countObjects(`${operation.keyId}/v1`), 1);
    assert.deepEqual(await countEvents(admin, operation.keyId), {
      [subjects.keyEvent('created', operation.keyId)]: 1,
    });
    const outcomes = lines.filter(
      (line) => line.operationId === operation.operationId && typeof line.duplicate === 'boolean',
    );
    assert.deepEqual(
      outcomes.map((line) => [line.msg, line.alreadyDone, line.duplicate]),
      [
        ['operation succeeded', true, false],
        ['operation outcome already published', true, true],
      ],
    );
    assert.ok(lines.some((line) => line.msg === 'handler failed; message will be redelivered'));
  });

  it('publishes its capability descriptor', async () => {
    const bus = await connectAs(environment, 'connector-hsm');
    try {
      const revision = await publishCapabilities(bus, HSM_CAPABILITIES);
      const entry = await (await admin.kv(BUCKETS.capabilities)).get('hsm');

      assert.equal(entry?.revision, revision);
      const stored = entry?.json<Record<string, unknown>>();
      assert.equal(stored?.provider, 'hsm');
      assert.deepEqual(stored?.rotation, HSM_CAPABILITIES.rotation);
    } finally {
      await bus.close();
    }
  });
});

function countObjects(label: string): number {
  return withTokenSession(
    token,
    (module, session) => objectsByLabel(module, session, label).length,
  );
}
