// The policy service as a child process against real NATS: validation and rejection,
// de-duplication, per-key admission, the inventory projection and dead letters.
//
// Commands use the `aws` provider because no AWS connector runs in these suites. The tests
// play the connector themselves through the `connector-aws` user and durable: connecting as
// that user registers the AWS capability descriptor, and the tests publish the outcome events
// a connector would, or fail the operation. So every step goes through the real bus,
// permissions and streams.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Bus, PermanentError, publishDeadLetter, type RunningConsumer } from '@keytower/bus';
import {
  BUCKETS,
  buildEnvelope,
  DURABLES,
  deriveEventId,
  deriveOperationId,
  type InventoryEntry,
  inventoryEntrySchema,
  type KeyEventName,
  messageTypes,
  newCommandId,
  type OperationData,
  STREAMS,
  subjects,
} from '@keytower/contracts';
import {
  commandEnvelope,
  connectAs,
  type NatsEnvironment,
  natsEnvironment,
  operationsFor,
  readStream,
  registerStandInConnector,
  sendCommand,
  type ServiceProcess,
  startPolicy,
  waitForStatus,
} from './policy-harness.ts';

const CREATE_DATA = {
  provider: 'aws',
  purpose: 'encrypt',
  algorithm: 'AES_256',
  label: 'policy-e2e',
};

let environment: NatsEnvironment;
let policy: ServiceProcess;
let admin: Bus;
let cli: Bus;
let connector: Bus;

before(async () => {
  environment = await natsEnvironment();
  policy = await startPolicy(environment);
  admin = await connectAs(environment, 'admin');
  cli = await connectAs(environment, 'cli');
  connector = await connectAs(environment, 'connector-aws');
});

after(async () => {
  await policy?.stop();
  await Promise.all([admin?.close(), cli?.close(), connector?.close()]);
  await environment?.stop();
});

/** Publishes the outcome event a connector publishes for an operation. */
async function publishOutcome(
  operation: OperationData,
  event: KeyEventName,
  extra: Record<string, unknown>,
  overrides: { sequence?: number; operationId?: string; commandId?: string } = {},
) {
  const type = messageTypes.keyEvent(event);
  const sourceId = overrides.operationId ?? operation.operationId;
  const envelope = buildEnvelope({
    id: deriveEventId(`${sourceId}:${overrides.sequence ?? operation.sequence}`, type),
    type,
    subject: operation.keyId,
    data: {
      keyId: operation.keyId,
      commandId: overrides.commandId ?? operation.commandId,
      operationId: sourceId,
      provider: operation.provider,
      sequence: overrides.sequence ?? operation.sequence,
      native: { stand_in: true },
      ...extra,
    },
    actor: 'service:connector-aws',
    source: 'keytower/e2e-connector',
  });
  return await connector.publish(subjects.keyEvent(event, operation.keyId), envelope);
}

/** Returns the single operation policy published for a key, failing when there are more. */
async function onlyOperation(keyId: string): Promise<OperationData> {
  const operations = await operationsFor(admin, keyId);
  assert.equal(
    operations.length,
    1,
    `expected one operation for ${keyId}, found ${operations.length}`,
  );
  return (operations[0]?.data as { data: OperationData }).data;
}

async function waitForOperations(
  keyId: string,
  count: number,
  timeoutMs = 10_000,
): Promise<OperationData[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const operations = await operationsFor(admin, keyId);
    if (operations.length >= count || Date.now() > deadline) {
      return operations.map((operation) => (operation.data as { data: OperationData }).data);
    }
    await sleep(100);
  }
}

async function readInventory(keyId: string): Promise<InventoryEntry | null> {
  const inventory = await admin.kv(BUCKETS.inventory);
  const stored = await inventory.get(keyId);
  return stored === null || stored.operation !== 'PUT'
    ? null
    : inventoryEntrySchema.parse(stored.json());
}

/** Creates a key through policy and the stand-in connector; returns its id. */
async function createKey(): Promise<string> {
  const create = commandEnvelope('create', CREATE_DATA);
  await sendCommand(cli, create);
  await waitForStatus(admin, create.id, (entry) => entry.status === 'in-progress');
  const operation = await onlyOperation(create.subject);
  await publishOutcome(operation, 'created', {
    ...CREATE_DATA,
    provider: 'aws',
    tags: {},
    version: 1,
    nativeVersionId: `arn:stand-in:${create.subject}:1`,
    primaryVersion: 1,
  });
  await waitForStatus(admin, create.id, (entry) => entry.status === 'succeeded');
  return create.subject;
}

describe('policy service', () => {
  test('malformed command rejected, audited, next succeeds', async () => {
    const bad = commandEnvelope('create', CREATE_DATA);
    const raw = { ...bad, data: { ...CREATE_DATA, algorithm: 'DES' } };
    await cli.publish(subjects.command('create', bad.subject), raw);

    const status = await waitForStatus(admin, bad.id, (entry) => entry.status === 'rejected');
    assert.equal(status.reason?.code, 'invalid-command');
    assert.equal(status.reason?.field, 'data.algorithm');
    assert.match(
      status.reason?.message ?? '',
      /data\.algorithm: expected one of "AES_256", "EC_P256", "RSA_3072", received "DES"/,
    );

    const rejections = await readStream(
      admin,
      STREAMS.events,
      subjects.commandRejected(bad.subject),
    );
    assert.equal(rejections.length, 1);
    const event = rejections[0]?.data as {
      id: string;
      type: string;
      data: { code: string; issues: Array<{ field: string }> };
    };
    assert.equal(event.type, messageTypes.commandRejected);
    assert.equal(event.id, deriveEventId(bad.id, messageTypes.commandRejected));
    assert.equal(event.data.code, 'invalid-command');
    assert.equal(event.data.issues[0]?.field, 'data.algorithm');

    const keyId = await createKey();
    const entry = await readInventory(keyId);
    assert.equal(entry?.state, 'enabled');
    assert.equal(entry?.primaryVersion, 1);
    assert.equal(entry?.pending, null);
  });

  test('unparseable bytes rejected by stream position', async () => {
    const published = await admin.connection.request(
      'kms.cmd.v1.key.create._',
      new TextEncoder().encode('{not json'),
    );
    const ack = published.json<{ seq: number }>();
    const rejections = await waitForRejection(subjects.commandRejected(null), (data) =>
      String(data.message).includes('invalid JSON'),
    );
    assert.equal(rejections.code, 'invalid-command');
    assert.ok(ack.seq > 0);
  });

  test('oversized subject token is not taken as key id', async () => {
    const envelope = commandEnvelope('rotate', { keyId: 'kt_000000000000000000000000' });
    const subject = `kms.cmd.v1.key.rotate.${'x'.repeat(200)}`;
    await admin.jetstream.publish(
      subject,
      JSON.stringify({ ...envelope, subject: 'x'.repeat(100) }),
      {
        msgID: envelope.id,
      },
    );
    const status = await waitForStatus(admin, envelope.id, (entry) => entry.status === 'rejected');
    assert.equal(status.reason?.code, 'invalid-command');
    assert.equal(status.reason?.field, 'subject');
    assert.equal(status.keyId, null);
  });

  test('unknown version names the versions that exist', async () => {
    const envelope = commandEnvelope('rotate', { keyId: 'kt_000000000000000000000000' });
    const unknownVersion = { ...envelope, type: 'keytower.command.key.rotate.v7' };
    await cli.publish(subjects.command('rotate', envelope.subject), unknownVersion);
    const status = await waitForStatus(admin, envelope.id, (entry) => entry.status === 'rejected');
    assert.equal(status.reason?.code, 'unknown-message-type');
    assert.match(status.reason?.message ?? '', /versions that exist: v1/);
  });

  test('same command id twice yields one operation', async () => {
    const create = commandEnvelope('create', CREATE_DATA);
    const first = await sendCommand(cli, create);
    const second = await sendCommand(cli, create);
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(second.seq, first.seq);

    await waitForStatus(admin, create.id, (entry) => entry.status === 'in-progress');
    await sleep(500);
    const operation = await onlyOperation(create.subject);
    assert.equal(operation.commandId, create.id);
    assert.equal(operation.sequence, 1);
    assert.equal(operation.version, 1);
  });

  test('repeat beyond the duplicate window is dropped', async () => {
    const create = commandEnvelope('create', CREATE_DATA);
    await sendCommand(cli, create);
    await waitForStatus(admin, create.id, (entry) => entry.status === 'in-progress');
    const operation = await onlyOperation(create.subject);
    await publishOutcome(operation, 'created', {
      ...CREATE_DATA,
      tags: {},
      version: 1,
      nativeVersionId: `arn:stand-in:${create.subject}:1`,
      primaryVersion: 1,
    });
    const finished = await waitForStatus(admin, create.id, (entry) => entry.status === 'succeeded');

    // A different Nats-Msg-Id stands for a repeat that JetStream no longer remembers.
    const repeat = await admin.jetstream.publish(
      subjects.command('create', create.subject),
      JSON.stringify(create),
      { msgID: `${create.id}-late` },
    );
    assert.equal(repeat.duplicate, false);
    await sleep(1_000);

    const later = await waitForStatus(admin, create.id, () => true);
    assert.deepEqual(later, finished);
    assert.equal((await operationsFor(admin, create.subject)).length, 1);
    const rejections = await readStream(
      admin,
      STREAMS.events,
      subjects.commandRejected(create.subject),
    );
    assert.equal(rejections.length, 0);
    assert.equal((await readInventory(create.subject))?.sequence, 1);
  });

  test('create for an unregistered provider is rejected', async () => {
    const capabilities = await admin.kv(BUCKETS.capabilities);
    await capabilities.delete('gcp');
    try {
      const create = commandEnvelope('create', { ...CREATE_DATA, provider: 'gcp' });
      await sendCommand(cli, create);
      const status = await waitForStatus(admin, create.id, (entry) => entry.status !== 'received');
      assert.equal(status.status, 'rejected');
      assert.equal(status.reason?.code, 'provider-unavailable');
      assert.equal(status.reason?.field, 'data.provider');
      assert.equal(
        status.reason?.message,
        'provider gcp is unavailable: no connector-gcp has registered its capabilities; run a connector for gcp, or choose a provider whose connector is registered',
      );
      assert.equal(await readInventory(create.subject), null);
      assert.equal((await operationsFor(admin, create.subject)).length, 0);
      const rejections = await readStream(
        admin,
        STREAMS.events,
        subjects.commandRejected(create.subject),
      );
      assert.equal(rejections.length, 1);

      await registerStandInConnector(admin, 'gcp');
      const next = commandEnvelope('create', { ...CREATE_DATA, provider: 'gcp' });
      await sendCommand(cli, next);
      const admitted = await waitForStatus(admin, next.id, (entry) => entry.status !== 'received');
      assert.equal(admitted.status, 'in-progress');
      assert.equal((await readInventory(next.subject))?.pending?.action, 'create');
      assert.equal((await operationsFor(admin, next.subject)).length, 1);
    } finally {
      await capabilities.delete('gcp');
    }
  });

  test('unsupported algorithm is not-supported', async () => {
    const create = commandEnvelope('create', { ...CREATE_DATA, algorithm: 'EC_P256' });
    await sendCommand(cli, create);
    const status = await waitForStatus(admin, create.id, (entry) => entry.status !== 'received');
    assert.equal(status.status, 'rejected');
    assert.equal(status.reason?.code, 'not-supported');
    assert.equal(status.reason?.field, 'data.algorithm');
    assert.equal(
      status.reason?.message,
      'algorithm EC_P256 is not supported for encrypt keys by provider aws (supported: AES_256)',
    );
    assert.equal(await readInventory(create.subject), null);
    assert.equal((await operationsFor(admin, create.subject)).length, 0);
  });

  test('five concurrent rotations admit exactly one', async () => {
    const keyId = await createKey();
    const rotations = Array.from({ length: 5 }, () => commandEnvelope('rotate', { keyId }));
    await Promise.all(rotations.map((rotation) => sendCommand(cli, rotation)));

    const statuses = await Promise.all(
      rotations.map((rotation) =>
        waitForStatus(admin, rotation.id, (entry) => entry.status === 'in-progress'),
      ),
    );
    const admitted = statuses.filter((entry) => entry.decision?.outcome === 'admitted');
    const folded = statuses.filter((entry) => entry.decision?.outcome === 'folded');
    assert.equal(admitted.length, 1);
    assert.equal(folded.length, 4);
    const runningOperation = admitted[0]?.operationId ?? '';
    for (const entry of folded) {
      assert.equal(entry.operationId, runningOperation);
      assert.equal(entry.reason?.code, 'rotation-folded');
      assert.match(
        entry.reason?.message ?? '',
        new RegExp(
          `^folded into the rotation to version 2 \\(operation ${runningOperation}\\), which is in flight`,
        ),
      );
    }

    const operations = await waitForOperations(keyId, 2);
    const rotateOperations = operations.filter((operation) => operation.action === 'rotate');
    assert.equal(rotateOperations.length, 1);
    const operation = rotateOperations[0];
    assert.ok(operation);
    assert.equal(operation.version, 2);
    assert.equal(operation.sequence, 2);

    // The folded rotates end with the rotation they joined.
    await publishOutcome(operation, 'version-created', {
      version: 2,
      nativeVersionId: `arn:stand-in:${keyId}:2`,
      primaryVersion: 2,
    });
    const finished = await Promise.all(
      rotations.map((rotation) =>
        waitForStatus(admin, rotation.id, (entry) => entry.status === 'succeeded'),
      ),
    );
    const eventIds = new Set(finished.map((entry) => entry.terminalEvent?.id));
    assert.equal(eventIds.size, 1);
    for (const entry of finished.filter((status) => status.decision?.outcome === 'folded')) {
      assert.equal(entry.reason?.code, 'rotation-folded');
      assert.match(entry.reason?.message ?? '', /which finished after this command was issued$/);
      assert.equal(entry.terminalEvent?.type, messageTypes.keyEvent('version-created'));
    }
    const version = (await readInventory(keyId))?.versions.find(
      (candidate) => candidate.version === 2,
    );
    assert.deepEqual(
      [...(version?.foldedCommandIds ?? [])].sort(),
      folded.map((entry) => entry.commandId).sort(),
    );
  });

  test('rotations issued together fold (K12)', async () => {
    const keyId = await createKey();
    // A connector that takes 150 ms per rotation of this key, so the rotates sent after the
    // first arrive while it is in flight or after it finished.
    let rotating: RunningConsumer | undefined;
    try {
      rotating = await connector.consume({
        stream: STREAMS.operations,
        durable: DURABLES.connector('aws'),
        handler: async (message) => {
          const operation = message.json<{ data: OperationData }>().data;
          if (operation.keyId !== keyId || operation.action !== 'rotate') {
            return;
          }
          await sleep(150);
          await publishOutcome(operation, 'version-created', {
            version: operation.version,
            nativeVersionId: `arn:stand-in:${keyId}:${operation.version}`,
            primaryVersion: operation.version,
          });
        },
      });

      // Five CLI runs started at once: one issue time, arrivals spread over about a second.
      const issuedAt = new Date().toISOString();
      const rotations = Array.from({ length: 5 }, () =>
        buildEnvelope({
          id: newCommandId(),
          type: messageTypes.command('rotate'),
          subject: keyId,
          data: { keyId },
          actor: 'user:alice',
          source: 'keytower/e2e',
          time: issuedAt,
        }),
      );
      for (const rotation of rotations) {
        await sendCommand(cli, rotation);
        await sleep(250);
      }

      const statuses = await Promise.all(
        rotations.map((rotation) =>
          waitForStatus(admin, rotation.id, (entry) => entry.status === 'succeeded'),
        ),
      );
      const admitted = statuses.filter((entry) => entry.decision?.outcome === 'admitted');
      const folded = statuses.filter((entry) => entry.decision?.outcome === 'folded');
      assert.equal(admitted.length, 1);
      assert.equal(folded.length, 4);
      const rotation = admitted[0];
      assert.ok(rotation);
      for (const entry of folded) {
        assert.equal(entry.reason?.code, 'rotation-folded');
        assert.equal(
          entry.reason?.message,
          `folded into the rotation to version 2 (operation ${rotation.operationId}), which finished after this command was issued`,
        );
        assert.equal(entry.operationId, rotation.operationId);
        assert.deepEqual(entry.terminalEvent, rotation.terminalEvent);
      }

      const operations = await operationsFor(admin, keyId);
      assert.equal(
        operations.filter(
          (operation) => (operation.data as { data: OperationData }).data.action === 'rotate',
        ).length,
        1,
      );
      const entry = await readInventory(keyId);
      assert.equal(entry?.primaryVersion, 2);
      assert.deepEqual(
        entry?.versions.map((version) => [version.version, version.state]),
        [
          [1, 'enabled'],
          [2, 'enabled'],
        ],
      );
      assert.equal(entry?.pending, null);
    } finally {
      await rotating?.stop();
    }
  });

  test('rotate issued after the rotation admits', async () => {
    const keyId = await createKey();
    const first = commandEnvelope('rotate', { keyId });
    await sendCommand(cli, first);
    await waitForStatus(admin, first.id, (entry) => entry.status === 'in-progress');
    const operation = (await waitForOperations(keyId, 2)).find(
      (candidate) => candidate.action === 'rotate',
    );
    assert.ok(operation);
    await publishOutcome(operation, 'version-created', {
      version: 2,
      nativeVersionId: `arn:stand-in:${keyId}:2`,
      primaryVersion: 2,
    });
    await waitForStatus(admin, first.id, (entry) => entry.status === 'succeeded');

    const later = commandEnvelope('rotate', { keyId });
    await sendCommand(cli, later);
    const status = await waitForStatus(admin, later.id, (entry) => entry.status !== 'received');
    assert.equal(status.status, 'in-progress');
    assert.equal(status.decision?.outcome, 'admitted');
    assert.equal((await readInventory(keyId))?.pending?.version, 3);
  });

  test('two replicas admit one rotation', async () => {
    const keyId = await createKey();
    const replica = await startPolicy(environment);
    const mark = policy.output().length;
    try {
      const rotations = Array.from({ length: 10 }, () => commandEnvelope('rotate', { keyId }));
      await Promise.all(rotations.map((rotation) => sendCommand(cli, rotation)));
      const statuses = await Promise.all(
        rotations.map((rotation) =>
          waitForStatus(admin, rotation.id, (entry) => entry.status === 'in-progress'),
        ),
      );
      const admitted = statuses.filter((entry) => entry.decision?.outcome === 'admitted');
      assert.equal(admitted.length, 1);
      assert.ok(
        statuses.every(
          (entry) =>
            entry.decision?.outcome === 'admitted' || entry.reason?.code === 'rotation-folded',
        ),
      );

      const operations = await waitForOperations(keyId, 2);
      assert.equal(operations.filter((operation) => operation.action === 'rotate').length, 1);
      // Both replicas took part, so the compare-and-set decided between processes.
      const decidedHere = (output: string) =>
        output
          .split('\n')
          .filter(
            (line) =>
              line.includes(keyId) &&
              /rotate folded into the rotation in flight|operation admitted/.test(line),
          ).length;
      assert.ok(
        decidedHere(replica.output()) > 0,
        'the second replica decided none of the rotations',
      );
      assert.ok(
        decidedHere(policy.output().slice(mark)) > 0,
        'the first replica decided none of the rotations',
      );
    } finally {
      await replica.stop();
    }
  });

  test('projection applies out-of-order events in sequence', async () => {
    const keyId = await createKey();
    const rotate = commandEnvelope('rotate', { keyId });
    await sendCommand(cli, rotate);
    await waitForStatus(admin, rotate.id, (entry) => entry.status === 'in-progress');
    const operation = (await waitForOperations(keyId, 2)).find(
      (candidate) => candidate.action === 'rotate',
    );
    assert.ok(operation);

    // Sequence 3 arrives first: it must wait until sequence 2 has been applied.
    const laterCommand = newCommandId();
    await publishOutcome(
      operation,
      'disabled',
      { version: 1 },
      {
        sequence: 3,
        operationId: deriveOperationId(laterCommand),
        commandId: laterCommand,
      },
    );
    await sleep(1_500);
    const waiting = await readInventory(keyId);
    assert.equal(waiting?.sequence, 1);
    assert.equal(waiting?.versions[0]?.state, 'enabled');

    await publishOutcome(operation, 'version-created', {
      version: 2,
      nativeVersionId: `arn:stand-in:${keyId}:2`,
      primaryVersion: 2,
    });
    await waitForStatus(admin, rotate.id, (entry) => entry.status === 'succeeded');
    const deadline = Date.now() + 10_000;
    let entry = await readInventory(keyId);
    while (entry?.sequence !== 3 && Date.now() < deadline) {
      await sleep(100);
      entry = await readInventory(keyId);
    }
    assert.equal(entry?.sequence, 3);
    assert.equal(entry?.primaryVersion, 2);
    assert.deepEqual(
      entry?.versions.map((version) => [version.version, version.state]),
      [
        [1, 'disabled'],
        [2, 'enabled'],
      ],
    );

    const inventory = await admin.kv(BUCKETS.inventory);
    const sequences: number[] = [];
    for await (const revision of await inventory.history({ key: keyId })) {
      if (revision.operation === 'PUT') {
        sequences.push(inventoryEntrySchema.parse(revision.json()).sequence);
      }
    }
    assert.deepEqual(
      sequences.filter((sequence, index) => index === 0 || sequence !== sequences[index - 1]),
      [0, 1, 2, 3],
    );
  });

  test('dead-lettered operation leaves the key usable', async () => {
    const keyId = await createKey();
    const rotate = commandEnvelope('rotate', { keyId });

    // A connector that fails this key's rotation permanently, so the bus dead-letters it.
    let failing: RunningConsumer | undefined;
    try {
      failing = await connector.consume({
        stream: STREAMS.operations,
        durable: DURABLES.connector('aws'),
        handler: async (message) => {
          const operation = message.json<{ data: OperationData }>().data;
          if (operation.keyId === keyId && operation.action === 'rotate') {
            throw new PermanentError('stand-in provider rejected the call');
          }
        },
      });
      await sendCommand(cli, rotate);
      const status = await waitForStatus(
        admin,
        rotate.id,
        (entry) => entry.status === 'dead-lettered',
      );
      assert.match(status.reason?.message ?? '', /connector-aws gave up/);
    } finally {
      await failing?.stop();
    }

    const entry = await readInventory(keyId);
    assert.equal(entry?.pending, null);
    assert.equal(entry?.sequence, 2);

    const next = commandEnvelope('rotate', { keyId });
    await sendCommand(cli, next);
    const admitted = await waitForStatus(admin, next.id, (status) => status.status !== 'received');
    assert.equal(admitted.status, 'in-progress');
    const pending = (await readInventory(keyId))?.pending;
    assert.equal(pending?.sequence, 3);
    assert.equal(pending?.version, 2);
  });

  test('dead-lettered event keeps the key blocked', async () => {
    const keyId = await createKey();
    const rotate = commandEnvelope('rotate', { keyId });
    await sendCommand(cli, rotate);
    await waitForStatus(admin, rotate.id, (entry) => entry.status === 'in-progress');
    const operation = (await waitForOperations(keyId, 2)).find(
      (candidate) => candidate.action === 'rotate',
    );
    assert.ok(operation);

    // The projection gave up on the rotation's outcome event, as after its last delivery.
    const event = buildEnvelope({
      id: deriveEventId(operation.operationId, messageTypes.keyEvent('version-created')),
      type: messageTypes.keyEvent('version-created'),
      subject: keyId,
      data: {
        keyId,
        commandId: operation.commandId,
        operationId: operation.operationId,
        provider: 'aws',
        sequence: operation.sequence,
        native: {},
        version: 2,
        nativeVersionId: 'stand-in-2',
        primaryVersion: 2,
      },
      actor: 'service:connector-aws',
      source: 'keytower/e2e-connector',
    });
    const policyBus = await connectAs(environment, 'policy');
    try {
      await publishDeadLetter(policyBus, {
        stream: STREAMS.events,
        durable: DURABLES.policyProjection,
        subject: subjects.keyEvent('version-created', keyId),
        headers: undefined,
        data: new TextEncoder().encode(JSON.stringify(event)),
        streamSequence: Date.now(),
        attempts: 60,
        lastError: 'stand-in projection failure',
        reason: 'max-deliveries',
      });
    } finally {
      await policyBus.close();
    }

    const status = await waitForStatus(
      admin,
      rotate.id,
      (entry) => entry.status === 'dead-lettered',
    );
    assert.match(status.reason?.message ?? '', /policy-projection gave up/);
    const entry = await readInventory(keyId);
    assert.equal(entry?.pending?.commandId, rotate.id);
    assert.equal(entry?.sequence, 1);
  });

  test('operation.failed records failed and frees the key', async () => {
    const keyId = await createKey();
    const disable = commandEnvelope('disable', { keyId, version: 1 });
    await sendCommand(cli, disable);
    await waitForStatus(admin, disable.id, (entry) => entry.status === 'in-progress');
    const operation = (await waitForOperations(keyId, 2)).find(
      (candidate) => candidate.action === 'disable',
    );
    assert.ok(operation);

    const failure = buildEnvelope({
      id: deriveEventId(operation.operationId, messageTypes.operationFailed),
      type: messageTypes.operationFailed,
      subject: keyId,
      data: {
        keyId,
        commandId: operation.commandId,
        operationId: operation.operationId,
        provider: 'aws',
        action: 'disable',
        sequence: operation.sequence,
        error: {
          code: 'provider-unavailable',
          message: 'stand-in provider timed out',
          retryable: true,
        },
      },
      actor: 'service:connector-aws',
      source: 'keytower/e2e-connector',
    });
    await connector.publish(subjects.operationFailed(keyId), failure);
    const status = await waitForStatus(admin, disable.id, (entry) => entry.status === 'failed');
    assert.equal(status.reason?.code, 'provider-unavailable');
    assert.equal(status.terminalEvent?.id, failure.id);
    assert.equal(status.terminalEvent?.type, messageTypes.operationFailed);

    const entry = await readInventory(keyId);
    assert.equal(entry?.pending, null);
    assert.equal(entry?.versions[0]?.state, 'enabled');
  });

  test('folded rotate fails with its rotation', async () => {
    const keyId = await createKey();
    const first = commandEnvelope('rotate', { keyId });
    await sendCommand(cli, first);
    await waitForStatus(admin, first.id, (entry) => entry.status === 'in-progress');
    const second = commandEnvelope('rotate', { keyId });
    await sendCommand(cli, second);
    const joined = await waitForStatus(admin, second.id, (entry) => entry.status !== 'received');
    assert.equal(joined.status, 'in-progress');
    assert.equal(joined.decision?.outcome, 'folded');
    const operation = (await waitForOperations(keyId, 2)).find(
      (candidate) => candidate.action === 'rotate',
    );
    assert.ok(operation);

    const failure = buildEnvelope({
      id: deriveEventId(operation.operationId, messageTypes.operationFailed),
      type: messageTypes.operationFailed,
      subject: keyId,
      data: {
        keyId,
        commandId: operation.commandId,
        operationId: operation.operationId,
        provider: 'aws',
        action: 'rotate',
        sequence: operation.sequence,
        error: { code: 'provider-rejected', message: 'stand-in quota exceeded', retryable: false },
      },
      actor: 'service:connector-aws',
      source: 'keytower/e2e-connector',
    });
    await connector.publish(subjects.operationFailed(keyId), failure);

    const status = await waitForStatus(admin, second.id, (entry) => entry.status === 'failed');
    assert.equal(status.reason?.code, 'rotation-folded');
    assert.equal(
      status.reason?.message,
      `folded into the rotation to version 2 (operation ${operation.operationId}), which failed: stand-in quota exceeded`,
    );
    assert.equal(status.terminalEvent?.id, failure.id);
    const own = await waitForStatus(admin, first.id, (entry) => entry.status === 'failed');
    assert.equal(own.reason?.code, 'provider-rejected');
    assert.equal((await readInventory(keyId))?.pending, null);
    assert.equal((await operationsFor(admin, keyId)).length, 2);
  });

  test('crash after admission republishes the operation', async () => {
    const keyId = await createKey();
    await policy.stop();
    const crashing = await startPolicy(environment, { KEYTOWER_CRASH_POINT: 'after-admission' });
    const killed = new Promise<NodeJS.Signals | null>((resolveExit) =>
      crashing.child.once('exit', (_code, signal) => resolveExit(signal)),
    );

    const rotate = commandEnvelope('rotate', { keyId });
    await sendCommand(cli, rotate);
    assert.equal(await killed, 'SIGKILL');
    const admittedStatus = await waitForStatus(admin, rotate.id, () => true);
    assert.equal(admittedStatus.status, 'in-progress');
    assert.equal(admittedStatus.operationId, deriveOperationId(rotate.id));
    assert.equal((await readInventory(keyId))?.pending?.commandId, rotate.id);
    assert.equal((await operationsFor(admin, keyId)).length, 1);

    // The unacknowledged command is delivered again once its ack wait (30 s) has passed.
    policy = await startPolicy(environment);
    const operations = await waitForOperations(keyId, 2, 45_000);
    assert.equal(operations.length, 2);
    const rotateOperation = operations[1];
    assert.equal(rotateOperation?.operationId, deriveOperationId(rotate.id));
    assert.equal(rotateOperation?.version, 2);
    assert.equal(rotateOperation?.sequence, 2);

    await publishOutcome(rotateOperation as OperationData, 'version-created', {
      version: 2,
      nativeVersionId: `arn:stand-in:${keyId}:2`,
      primaryVersion: 2,
    });
    const finished = await waitForStatus(admin, rotate.id, (entry) => entry.status === 'succeeded');
    assert.equal(finished.operationId, deriveOperationId(rotate.id));
    await sleep(500);
    assert.equal((await operationsFor(admin, keyId)).length, 2);
  });

  test('not-authorized actor is rejected', async () => {
    const create = commandEnvelope('create', CREATE_DATA, { actor: 'user:mallory' });
    await sendCommand(cli, create);
    const status = await waitForStatus(admin, create.id, (entry) => entry.status === 'rejected');
    assert.equal(status.reason?.code, 'not-authorized');
    assert.equal(await readInventory(create.subject), null);

    const rotate = commandEnvelope('rotate', { keyId: create.subject }, { actor: 'user:bob' });
    await sendCommand(cli, rotate);
    const bobStatus = await waitForStatus(admin, rotate.id, (entry) => entry.status === 'rejected');
    assert.equal(bobStatus.reason?.code, 'not-authorized');
    assert.match(bobStatus.reason?.message ?? '', /may not rotate/);
  });
});

async function waitForRejection(
  filter: string,
  accept: (data: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const events = await readStream(admin, STREAMS.events, filter);
    const match = events
      .map((event) => (event.data as { data: Record<string, unknown> }).data)
      .find(accept);
    if (match !== undefined) {
      return match;
    }
    await sleep(100);
  }
  throw new Error(`no rejection on ${filter} matched within 10 s`);
}
