import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  buildEnvelope,
  deriveEventId,
  deriveKeyId,
  deriveOperationId,
  messageTypes,
  newCommandId,
  subjects,
} from '@keytower/contracts';
import type { KeyAction, OperationData } from '@keytower/contracts';
import type { Bus } from '@keytower/bus';
import { InvalidStateError, TransportError } from '@keytower/provider';
import type { CreateKeyOptions, KeyProvider, VersionCreated } from '@keytower/provider';

import { CircuitBreaker, RetryPolicy, startConnectorRuntime } from '../src/index.ts';
import type { ConnectorRuntime } from '../src/index.ts';
import {
  connectAs,
  countEvents,
  natsEnvironment,
  quietLogger,
  waitForEvents,
} from '@keytower/testkit';
import type { NatsEnvironment } from '@keytower/testkit';

/**
 * A provider whose createKey results are scripted per call, so the runtime's retry, failure and
 * breaker paths run against the real bus deterministically. Every other method is unused here.
 */
class ScriptedProvider implements KeyProvider {
  readonly provider = 'hsm' as const;
  readonly calls: CreateKeyOptions[] = [];
  script: Array<Error | 'ok'> = [];

  async createKey(options: CreateKeyOptions): Promise<VersionCreated> {
    this.calls.push(options);
    const step = this.script.shift() ?? 'ok';
    if (step !== 'ok') {
      throw step;
    }
    return {
      version: options.version,
      nativeVersionId: `native-${options.keyId}-v${options.version}`,
      alreadyExisted: this.calls.filter((call) => call.keyId === options.keyId).length > 1,
      native: { note: 'scripted' },
    };
  }

  rotateKey = this.#unused;
  disableVersion = this.#unused;
  enableVersion = this.#unused;
  scheduleDestroy = this.#unused;
  cancelDestroy = this.#unused;
  destroyKey = this.#unused;
  describeKey = this.#unused;

  async #unused(): Promise<never> {
    throw new Error('not used by these tests');
  }
}

let environment: NatsEnvironment;
let admin: Bus;
let policyBus: Bus;

before(async () => {
  environment = await natsEnvironment();
  admin = await connectAs(environment, 'admin');
  policyBus = await connectAs(environment, 'policy');
});

after(async () => {
  await policyBus.close();
  await admin.close();
  await environment.stop();
});

function createOperation(sequence = 1): { operation: OperationData; commandId: string } {
  const commandId = newCommandId();
  const keyId = deriveKeyId(commandId);
  const operation: OperationData = {
    operationId: deriveOperationId(commandId),
    commandId,
    action: 'create',
    keyId,
    provider: 'hsm',
    sequence,
    version: 1,
    key: {
      purpose: 'encrypt',
      algorithm: 'AES_256',
      label: 'runtime test',
      tags: { team: 'runtime' },
    },
    params: { provider: 'hsm', purpose: 'encrypt', algorithm: 'AES_256', label: 'runtime test' },
    versions: [],
  };
  return { operation, commandId };
}

async function publishOperation(operation: OperationData, envelopeId = operation.operationId) {
  const envelope = buildEnvelope({
    id: envelopeId,
    type: messageTypes.operation(operation.action as KeyAction),
    subject: operation.keyId,
    data: operation,
    actor: 'user:alice',
    source: 'keytower/policy',
    correlationid: `corr-${operation.commandId}`,
    causationid: operation.commandId,
  });
  await policyBus.publish(subjects.operation('hsm', operation.action, operation.keyId), envelope);
  return envelope;
}

async function withRuntime<T>(
  provider: ScriptedProvider,
  options: { retryPolicy?: RetryPolicy; circuitBreaker?: CircuitBreaker },
  body: (runtime: ConnectorRuntime) => Promise<T>,
): Promise<T> {
  const connectorBus = await connectAs(environment, 'connector-hsm');
  const runtime = await startConnectorRuntime({
    bus: connectorBus,
    provider,
    logger: quietLogger,
    ...options,
  });
  try {
    return await body(runtime);
  } finally {
    await runtime.stop();
    await connectorBus.close();
  }
}

const fastRetries = () => new RetryPolicy({ initialDelayMs: 50, maxDelayMs: 200, maxAttempts: 3 });

describe('connector runtime on NATS', () => {
  it('publishes the outcome with the operation sequence', async () => {
    const provider = new ScriptedProvider();
    const { operation } = createOperation(7);

    await withRuntime(provider, { retryPolicy: fastRetries() }, async () => {
      const published = await publishOperation(operation);
      const [event] = await waitForEvents(admin, operation.keyId, 1);

      assert.ok(event);
      assert.equal(event.type, 'keytower.event.key.created.v1');
      assert.equal(event.id, deriveEventId(operation.operationId, 'keytower.event.key.created.v1'));
      assert.equal(event.causationid, published.id);
      assert.equal(event.correlationid, `corr-${operation.commandId}`);
      assert.equal(event.actor, 'system:connector-hsm');
      const data = event.data as Record<string, unknown>;
      assert.equal(data.sequence, 7);
      assert.equal(data.version, 1);
      assert.equal(data.primaryVersion, 1);
      assert.equal(data.nativeVersionId, `native-${operation.keyId}-v1`);
      assert.deepEqual(data.native, { note: 'scripted' });
      assert.deepEqual(data.tags, { team: 'runtime' });
    });
    assert.equal(provider.calls.length, 1);
    assert.equal(provider.calls[0]?.algorithm, 'AES_256');
  });

  it('stores one event for a repeated operation', async () => {
    const provider = new ScriptedProvider();
    const { operation } = createOperation();

    await withRuntime(provider, { retryPolicy: fastRetries() }, async () => {
      await publishOperation(operation);
      await waitForEvents(admin, operation.keyId, 1);
      // The same operation again under another message id, as when policy re-sends it.
      await publishOperation(operation, `${operation.operationId}-again`);
      for (let waited = 0; provider.calls.length < 2 && waited < 5_000; waited += 50) {
        await sleep(50);
      }
      await sleep(200);
    });

    assert.equal(provider.calls.length, 2);
    assert.deepEqual(await countEvents(admin, operation.keyId), {
      [subjects.keyEvent('created', operation.keyId)]: 1,
    });
  });

  it('retries a transport failure', async () => {
    const provider = new ScriptedProvider();
    provider.script = [new TransportError('connection reset', { provider: 'hsm' }), 'ok'];
    const { operation } = createOperation();

    await withRuntime(provider, { retryPolicy: fastRetries() }, async () => {
      await publishOperation(operation);
      const [event] = await waitForEvents(admin, operation.keyId, 1);
      assert.equal(event?.type, 'keytower.event.key.created.v1');
    });

    assert.equal(provider.calls.length, 2);
  });

  it('fails a non-retryable error at once', async () => {
    const provider = new ScriptedProvider();
    provider.script = [new InvalidStateError('key is pending deletion', { provider: 'hsm' })];
    const { operation } = createOperation(3);

    await withRuntime(provider, { retryPolicy: fastRetries() }, async () => {
      await publishOperation(operation);
      const [event] = await waitForEvents(admin, operation.keyId, 1);

      assert.equal(event?.type, 'keytower.event.operation.failed.v1');
      assert.equal(
        event?.id,
        deriveEventId(operation.operationId, 'keytower.event.operation.failed.v1'),
      );
      const data = event?.data as {
        sequence: number;
        action: string;
        error: { code: string; message: string; retryable: boolean };
      };
      assert.equal(data.sequence, 3);
      assert.equal(data.action, 'create');
      assert.deepEqual(data.error, {
        code: 'invalid-state',
        message: 'key is pending deletion',
        retryable: false,
      });
    });

    assert.equal(provider.calls.length, 1);
  });

  it('fails after the last retry', async () => {
    const provider = new ScriptedProvider();
    const failure = () => new TransportError('connection reset', { provider: 'hsm' });
    provider.script = [failure(), failure(), failure(), failure()];
    const { operation } = createOperation();

    await withRuntime(provider, { retryPolicy: fastRetries() }, async () => {
      await publishOperation(operation);
      const [event] = await waitForEvents(admin, operation.keyId, 1);

      assert.equal(event?.type, 'keytower.event.operation.failed.v1');
      const data = event?.data as { error: { code: string; retryable: boolean } };
      assert.equal(data.error.code, 'transport');
      assert.equal(data.error.retryable, true);
    });

    assert.equal(provider.calls.length, 3);
  });

  it('delays operations while the circuit is open', async () => {
    const provider = new ScriptedProvider();
    provider.script = [new TransportError('connection refused', { provider: 'hsm' })];
    const circuitBreaker = new CircuitBreaker({ failureThreshold: 1, coolDownMs: 1_500 });
    const first = createOperation();
    const second = createOperation();

    await withRuntime(provider, { retryPolicy: fastRetries(), circuitBreaker }, async () => {
      await publishOperation(first.operation);
      for (let waited = 0; circuitBreaker.state !== 'open' && waited < 5_000; waited += 20) {
        await sleep(20);
      }
      assert.equal(circuitBreaker.state, 'open');

      await publishOperation(second.operation);
      await sleep(700);
      assert.equal(provider.calls.length, 1, 'no provider call while the circuit is open');
      assert.deepEqual(await countEvents(admin, second.operation.keyId), {});

      const [firstEvent] = await waitForEvents(admin, first.operation.keyId, 1);
      const [secondEvent] = await waitForEvents(admin, second.operation.keyId, 1);
      assert.equal(firstEvent?.type, 'keytower.event.key.created.v1');
      assert.equal(secondEvent?.type, 'keytower.event.key.created.v1');
    });

    assert.equal(circuitBreaker.state, 'closed');
    assert.equal(provider.calls.length, 3);
  });
});
