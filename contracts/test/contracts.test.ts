import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  buildEnvelope,
  ContractViolation,
  deriveKeyId,
  deriveOperationId,
  generatedFiles,
  parseMessage,
  subjects,
  topology,
} from '../src/index.ts';
import { ALL_TYPES, SAMPLE_KEY_ID, sampleData } from './samples.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function envelope(type: string, data: unknown): Record<string, unknown> {
  return {
    specversion: '1.0',
    id: '01JEXAMPLE0000000000000099',
    source: 'keytower/test',
    type,
    time: '2026-12-04T10:00:00.000Z',
    subject: SAMPLE_KEY_ID,
    datacontenttype: 'application/json',
    data,
    actor: 'user:alice',
    correlationid: '01JEXAMPLE0000000000000099',
  };
}

function errorOf(input: unknown): string {
  const result = parseMessage(JSON.stringify(input));
  assert.equal(result.ok, false, 'expected the message to be rejected');
  return result.ok ? '' : result.error.message;
}

describe('parseMessage samples', () => {
  for (const type of ALL_TYPES) {
    it(`accepts a valid ${type}`, () => {
      const result = parseMessage(JSON.stringify(envelope(type, sampleData(type))));
      assert.equal(result.ok, true, result.ok ? '' : result.error.message);
    });

    it(`rejects ${type} with an unknown data field`, () => {
      const data = { ...(sampleData(type) as object), surplus: true };
      assert.equal(errorOf(envelope(type, data)), 'data.surplus: unknown field, remove it');
    });
  }
});

describe('parseMessage errors', () => {
  const create = envelope(
    'keytower.command.key.create.v1',
    sampleData('keytower.command.key.create.v1'),
  );

  it('names an invalid enum value', () => {
    const input = { ...create, data: { ...(create.data as object), algorithm: 'DES' } };
    assert.equal(
      errorOf(input),
      'data.algorithm: expected one of "AES_256", "EC_P256", "RSA_3072", received "DES"',
    );
  });

  it('names a missing field', () => {
    const input = { ...create, data: { provider: 'hsm', algorithm: 'AES_256', label: 'x' } };
    assert.equal(
      errorOf(input),
      'data.purpose: expected one of "encrypt", "sign", received nothing',
    );
  });

  it('names a wrong type', () => {
    const input = envelope('keytower.command.key.disable.v1', {
      keyId: SAMPLE_KEY_ID,
      version: '1',
    });
    assert.equal(errorOf(input), 'data.version: expected number, received "1"');
  });

  it('lists existing versions for an unknown version', () => {
    const result = parseMessage({ ...create, type: 'keytower.command.key.create.v7' });
    assert.equal(result.ok, false);
    if (result.ok) return;
    assert.equal(
      result.error.message,
      'type: unknown version of keytower.command.key.create, received "keytower.command.key.create.v7"; versions that exist: v1',
    );
    assert.deepEqual(result.error.knownVersions, [1]);
  });

  it('rejects an unknown type', () => {
    assert.equal(
      errorOf({ ...create, type: 'keytower.command.key.frobnicate.v1' }),
      'type: unknown message type "keytower.command.key.frobnicate.v1"; no version of keytower.command.key.frobnicate exists',
    );
  });

  it('rejects invalid JSON without throwing', () => {
    const result = parseMessage('{"specversion": ');
    assert.equal(result.ok, false);
    if (!result.ok) assert.equal(result.error.field, '(message)');
  });

  it('rejects an unknown envelope attribute', () => {
    assert.equal(errorOf({ ...create, extension: 'x' }), 'extension: unknown field, remove it');
  });

  it('rejects a malformed actor', () => {
    assert.equal(
      errorOf({ ...create, actor: 'alice' }),
      'actor: expected an actor like user:alice or system:scheduler, received "alice"',
    );
  });
});

describe('buildEnvelope', () => {
  it('fills defaults and validates', () => {
    const built = buildEnvelope({
      type: 'keytower.command.key.rotate.v1',
      subject: SAMPLE_KEY_ID,
      data: { keyId: SAMPLE_KEY_ID },
      actor: 'user:alice',
      source: 'keytower/test',
    });
    assert.equal(built.specversion, '1.0');
    assert.equal(built.correlationid, built.id);
  });

  it('throws ContractViolation on invalid data', () => {
    assert.throws(
      () =>
        buildEnvelope({
          type: 'keytower.command.key.rotate.v1',
          subject: SAMPLE_KEY_ID,
          data: { keyId: 'not a key id' },
          actor: 'user:alice',
          source: 'keytower/test',
        }),
      ContractViolation,
    );
  });
});

describe('derived ids and subjects', () => {
  it('derives the same ids from the same command id', () => {
    assert.equal(deriveKeyId('01JX'), deriveKeyId('01JX'));
    assert.notEqual(deriveKeyId('01JX'), deriveKeyId('01JY'));
    assert.match(deriveKeyId('01JX'), /^kt_[0-9a-f]{24}$/);
    assert.match(deriveOperationId('01JX'), /^op_[0-9a-f]{24}$/);
  });

  it('ends every key subject with the key id', () => {
    assert.equal(subjects.command('rotate', 'kt_1'), 'kms.cmd.v1.key.rotate.kt_1');
    assert.equal(subjects.operation('hsm', 'rotate', 'kt_1'), 'kms.op.v1.hsm.rotate.kt_1');
    assert.equal(
      subjects.keyEvent('version-created', 'kt_1'),
      'kms.evt.v1.key.version-created.kt_1',
    );
    assert.equal(subjects.commandRejected(null), 'kms.evt.v1.command.rejected._');
  });

  it('refuses a subject token with a dot or wildcard', () => {
    assert.throws(() => subjects.command('rotate', 'kt.1'), /invalid subject token "kt.1"/);
    assert.throws(() => subjects.command('rotate', '>'), /invalid subject token/);
  });
});

describe('topology', () => {
  it('has unique names and explicit settings', () => {
    const names = topology.consumers.map((consumer) => consumer.durable);
    assert.equal(new Set(names).size, names.length);
    for (const stream of topology.streams) {
      assert.ok(stream.maxAgeSeconds > 0, `${stream.name} max age`);
      assert.ok(stream.maxBytes > 0, `${stream.name} max bytes`);
      assert.equal(stream.discard, 'new', `${stream.name} discards new messages at its limit`);
    }
  });

  it('gives every consumer a stream that exists', () => {
    const streams = new Set(topology.streams.map((stream) => stream.name));
    for (const consumer of topology.consumers)
      assert.ok(streams.has(consumer.stream), consumer.durable);
  });
});

describe('generated files', () => {
  it('are in sync with the contracts', async () => {
    for (const file of generatedFiles()) {
      const onDisk = await readFile(join(root, file.path), 'utf8').catch(() => null);
      assert.equal(onDisk, file.content, `${file.path} is stale: run npm run contracts:generate`);
    }
  });

  it('has no stray schema files', () => {
    const output = execFileSync(
      process.execPath,
      [join(root, 'contracts/scripts/generate.ts'), '--check'],
      {
        encoding: 'utf8',
      },
    );
    assert.match(output, /up to date/);
  });
});
