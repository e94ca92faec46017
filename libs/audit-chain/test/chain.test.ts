import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  GENESIS_HASH,
  buildRecord,
  canonicalJson,
  canonicalRecord,
  chainHash,
  decodeRecord,
  InvalidAuditRecordError,
  recordId,
  verifyChain,
  verifyStoredChain,
  type AuditRecord,
} from '../src/index.ts';

// Expected ids, canonical texts and hashes below were computed outside this code, with
// `printf … | sha256sum` and `xxd -r -p` for the previous hash bytes, from the canonical
// texts written out by hand.
const ID_1 = 'ar_107ac3a43433c254d70e3edb684c221a'; // sha256('["KMS_AUDIT_IN",1]')[0..32]
const ID_2 = 'ar_a6d59a7af11b121205ddb366350380c8'; // sha256('["KMS_AUDIT_IN",2]')[0..32]
const ID_5 = 'ar_29ce0f30816d774855310da3a597d625'; // sha256('["KMS_AUDIT_IN",5]')[0..32]
const HASH_1 = '0b39a95569dea8b2d289a5ada2d52099c584d80c7630b58d8a498d70291c40ca';
const HASH_2 = '7827259ab0c4afd18446ba6897cc077cb4aa88515710eb9fe768f4f1f0ff55ef';
const HASH_3 = '439463feb6ae98d36ad4fbb9dffbb69e1d95d959a85a2d57cc53915d4eadd7e7';

const KEY = 'kt_000000000000000000000001';

const CREATE_COMMAND = {
  specversion: '1.0',
  type: 'keytower.command.key.create.v1',
  id: '01J0000000000000000000000A',
  source: 'keytower/cli',
  time: '2026-01-02T03:04:05.000Z',
  subject: KEY,
  datacontenttype: 'application/json',
  data: { provider: 'hsm', purpose: 'encrypt', algorithm: 'AES_256', label: 'orders' },
  actor: 'user:alice',
  correlationid: '01J0000000000000000000000A',
};

// Escaped non-ASCII, a number written as 0.10 and two secret fields, one nested in an array.
const IMPORT_COMMAND_TEXT =
  '{"type":"keytower.command.key.import.v1","id":"01J0000000000000000000000C","subject":"kt_000000000000000000000001",' +
  '"time":"2026-01-02T04:00:00Z","actor":"user:bob","signature":"eyJhbGciOiJFZERTQSJ9..c2ln",' +
  '"data":{"label":"x","keyMaterial":"c2VjcmV0","nested":[{"value":0.10,"PIN":"1234","note":"\\u00e9 \\u2603 \\ud83d\\ude00"}]}}';

const CANONICAL_1 =
  '{"envelope":{"actor":"user:alice","correlationid":"01J0000000000000000000000A","data":{"algorithm":"AES_256","label":"orders",' +
  '"provider":"hsm","purpose":"encrypt"},"datacontenttype":"application/json","id":"01J0000000000000000000000A","source":"keytower/cli",' +
  '"specversion":"1.0","subject":"kt_000000000000000000000001","time":"2026-01-02T03:04:05.000Z","type":"keytower.command.key.create.v1"},' +
  '"keyId":"kt_000000000000000000000001","message":{"actor":"user:alice","causationid":null,"correlationid":"01J0000000000000000000000A",' +
  '"id":"01J0000000000000000000000A","subject":"kt_000000000000000000000001","type":"keytower.command.key.create.v1"},' +
  `"prevHash":"${GENESIS_HASH}","recordId":"${ID_1}","redactedFields":[],"schemaVersion":1,"sequence":1,` +
  '"signature":{"jws":null,"present":false,"verified":null},' +
  '"source":{"sequence":1,"stream":"KMS_AUDIT_IN","subject":"kms.cmd.v1.key.create.kt_000000000000000000000001"},' +
  '"time":"2026-01-02T03:04:05.000Z"}';

const CANONICAL_2 =
  '{"envelope":{"base64":"bm90IGpzb257","parseError":"payload is not valid JSON","unparseable":true},"keyId":null,' +
  '"message":{"actor":null,"causationid":null,"correlationid":null,"id":null,"subject":null,"type":null},' +
  `"prevHash":"${HASH_1}","recordId":"${ID_2}","redactedFields":[],"schemaVersion":1,"sequence":2,` +
  '"signature":{"jws":null,"present":false,"verified":null},' +
  '"source":{"sequence":2,"stream":"KMS_AUDIT_IN","subject":"kms.dlq.v1.KMS_COMMANDS.policy-commands"},"time":"2026-01-02T03:05:00.000Z"}';

const CANONICAL_3 =
  '{"envelope":{"actor":"user:bob","data":{"label":"x","nested":[{"note":"é ☃ 😀","value":0.1}]},"id":"01J0000000000000000000000C",' +
  '"signature":"eyJhbGciOiJFZERTQSJ9..c2ln","subject":"kt_000000000000000000000001","time":"2026-01-02T04:00:00Z",' +
  '"type":"keytower.command.key.import.v1"},"keyId":"kt_000000000000000000000001","message":{"actor":"user:bob","causationid":null,' +
  '"correlationid":null,"id":"01J0000000000000000000000C","subject":"kt_000000000000000000000001","type":"keytower.command.key.import.v1"},' +
  `"prevHash":"${HASH_2}","recordId":"${ID_5}","redactedFields":["$.data.keyMaterial","$.data.nested[0].PIN"],"schemaVersion":1,"sequence":3,` +
  '"signature":{"jws":"eyJhbGciOiJFZERTQSJ9..c2ln","present":true,"verified":null},' +
  '"source":{"sequence":5,"stream":"KMS_AUDIT_IN","subject":"kms.cmd.v1.key.import.kt_000000000000000000000001"},"time":"2026-01-02T04:00:00.000Z"}';

const utf8 = (text: string) => new TextEncoder().encode(text);

function buildThreeRecords(): AuditRecord[] {
  const first = buildRecord({
    source: { stream: 'KMS_AUDIT_IN', sequence: 1, subject: `kms.cmd.v1.key.create.${KEY}` },
    data: utf8(JSON.stringify(CREATE_COMMAND)),
    storedAt: new Date('2026-01-02T03:04:06Z'),
    sequence: 1,
    prevHash: GENESIS_HASH,
  });
  const second = buildRecord({
    source: {
      stream: 'KMS_AUDIT_IN',
      sequence: 2,
      subject: 'kms.dlq.v1.KMS_COMMANDS.policy-commands',
    },
    data: utf8('not json{'),
    storedAt: new Date('2026-01-02T03:05:00Z'),
    sequence: 2,
    prevHash: first.hash,
  });
  const third = buildRecord({
    source: { stream: 'KMS_AUDIT_IN', sequence: 5, subject: `kms.cmd.v1.key.import.${KEY}` },
    data: utf8(IMPORT_COMMAND_TEXT),
    storedAt: new Date('2026-01-02T04:00:01Z'),
    sequence: 3,
    prevHash: second.hash,
  });
  return [first, second, third];
}

describe('canonicalJson', () => {
  test('orders members by UTF-16 code units', () => {
    // U+20AC (euro sign) sorts before U+1F600, whose UTF-16 form starts with 0xD83D.
    assert.equal(
      canonicalJson({ '😀': 1, '€': 2, b: 3, B: 4, a: { z: 1, y: 2 } }),
      '{"B":4,"a":{"y":2,"z":1},"b":3,"€":2,"😀":1}',
    );
  });

  test('writes numbers in ECMAScript shortest form', () => {
    const cases: Array<[number, string]> = [
      [1.0, '1'],
      [-0, '0'],
      [1e21, '1e+21'],
      [1e-7, '1e-7'],
      [0.000001, '0.000001'],
      [123456789012345680000, '123456789012345680000'],
      [0.1 + 0.2, '0.30000000000000004'],
      [Number.MAX_SAFE_INTEGER, '9007199254740991'],
      [5e-324, '5e-324'],
    ];
    for (const [value, expected] of cases) {
      assert.equal(canonicalJson(value), expected, `number ${value}`);
    }
  });

  test('escapes only what JSON requires', () => {
    assert.equal(canonicalJson('é\u2028\u0007"\\/'), '"é\u2028\\u0007\\"\\\\/"');
    assert.equal(canonicalJson(JSON.parse('"\\u00e9\\ud83d\\ude00"')), '"é😀"');
  });

  test('rejects values without a JSON form', () => {
    assert.throws(() => canonicalJson(Number.NaN), /NaN/);
    assert.throws(() => canonicalJson(Number.POSITIVE_INFINITY), /Infinity/);
    assert.throws(() => canonicalJson('\ud800'), /surrogate/);
    assert.throws(() => canonicalJson(undefined), /no JSON representation/);
  });
});

describe('recordId', () => {
  test('matches externally computed ids', () => {
    assert.equal(recordId('KMS_AUDIT_IN', 1), ID_1);
    assert.equal(recordId('KMS_AUDIT_IN', 2), ID_2);
    assert.equal(recordId('KMS_AUDIT_IN', 5), ID_5);
  });

  test('depends on stream and sequence only', () => {
    assert.equal(recordId('KMS_AUDIT_IN', 7), recordId('KMS_AUDIT_IN', 7));
    assert.notEqual(recordId('KMS_AUDIT_IN', 7), recordId('KMS_AUDIT_IN', 8));
    assert.notEqual(recordId('KMS_AUDIT_IN', 7), recordId('OTHER', 7));
  });

  test('rejects invalid positions', () => {
    assert.throws(() => recordId('', 1), /stream name is empty/);
    assert.throws(() => recordId('KMS_AUDIT_IN', 0), /positive integer/);
    assert.throws(() => recordId('KMS_AUDIT_IN', 1.5), /positive integer/);
  });
});

describe('chainHash', () => {
  test('hashes previous hash bytes then record bytes', () => {
    assert.equal(chainHash(GENESIS_HASH, CANONICAL_1), HASH_1);
    assert.equal(chainHash(GENESIS_HASH, utf8(CANONICAL_1)), HASH_1);
  });

  test('rejects a malformed previous hash', () => {
    assert.throws(() => chainHash('ABC', '{}'), /64 lowercase hex/);
    assert.throws(
      () => chainHash(GENESIS_HASH.toUpperCase().replace(/0/g, 'A'), '{}'),
      /64 lowercase hex/,
    );
  });
});

describe('buildRecord', () => {
  test('builds a three-record chain from genesis', () => {
    const [first, second, third] = buildThreeRecords();
    assert.ok(first, 'first record missing');
    assert.ok(second, 'second record missing');
    assert.ok(third, 'third record missing');

    assert.equal(canonicalRecord(first), CANONICAL_1);
    assert.equal(first.hash, HASH_1);
    assert.equal(canonicalRecord(second), CANONICAL_2);
    assert.equal(second.hash, HASH_2);
    assert.equal(canonicalRecord(third), CANONICAL_3);
    assert.equal(third.hash, HASH_3);
  });

  test('drops secret fields and lists them', () => {
    const third = buildThreeRecords()[2];
    assert.ok(third);
    assert.deepEqual(third.redactedFields, ['$.data.keyMaterial', '$.data.nested[0].PIN']);
    assert.doesNotMatch(canonicalRecord(third), /c2VjcmV0|1234/);
  });

  test('keeps unparseable payloads as base64', () => {
    const second = buildThreeRecords()[1];
    assert.ok(second);
    assert.deepEqual(second.envelope, {
      unparseable: true,
      base64: 'bm90IGpzb257',
      parseError: 'payload is not valid JSON',
    });
    assert.equal(second.time, '2026-01-02T03:05:00.000Z');
  });

  test('keeps invalid UTF-8 as base64', () => {
    const record = buildRecord({
      source: { stream: 'KMS_AUDIT_IN', sequence: 9, subject: 'kms.evt.v1.key.created.kt_1' },
      data: new Uint8Array([0x7b, 0xff, 0x7d]),
      storedAt: new Date('2026-01-02T00:00:00Z'),
      sequence: 1,
      prevHash: GENESIS_HASH,
    });
    assert.deepEqual(record.envelope, {
      unparseable: true,
      base64: 'e/99',
      parseError: 'payload is not valid UTF-8',
    });
    assert.equal(record.keyId, 'kt_1');
  });

  test('gives a rebuilt record the same id and hash', () => {
    const once = buildThreeRecords();
    const again = buildThreeRecords();
    assert.deepEqual(again, once);
  });

  test('rejects an invalid chain position', () => {
    const input = {
      source: { stream: 'KMS_AUDIT_IN', sequence: 1, subject: 's' },
      data: utf8('{}'),
      storedAt: new Date(),
      prevHash: GENESIS_HASH,
    };
    assert.throws(() => buildRecord({ ...input, sequence: 0 }), /positive integer/);
    assert.throws(
      () => buildRecord({ ...input, sequence: 1, prevHash: 'xyz' }),
      /64 lowercase hex/,
    );
  });
});

describe('verifyChain', () => {
  test('accepts an intact chain', () => {
    const result = verifyChain(buildThreeRecords());
    assert.deepEqual(result, { ok: true, verified: 3, head: { sequence: 3, hash: HASH_3 } });
  });

  test('accepts a segment after a trusted position', () => {
    const [, second, third] = buildThreeRecords();
    assert.ok(second, 'second record missing');
    assert.ok(third, 'third record missing');
    const result = verifyChain([second, third], { after: { sequence: 1, hash: HASH_1 } });
    assert.equal(result.ok, true);
  });

  test('detects an edited field', () => {
    const records = buildThreeRecords();
    const tampered = records.map((record) => ({ ...record }));
    const second = tampered[1];
    assert.ok(second);
    second.message = { ...second.message, actor: 'user:mallory' };

    const result = verifyChain(tampered);
    assert.equal(result.ok, false);
    assert.ok(!result.ok);
    assert.equal(result.verified, 1);
    assert.equal(result.break.sequence, 2);
    assert.equal(result.break.kind, 'hash');
    assert.equal(result.break.found, HASH_2);
  });

  test('detects a re-hashed edit at the next link', () => {
    const records = buildThreeRecords().map((record) => ({ ...record }));
    const second = records[1];
    assert.ok(second);
    second.time = '2030-01-01T00:00:00.000Z';
    second.hash = chainHash(second.prevHash, canonicalRecord(second));

    const result = verifyChain(records);
    assert.ok(!result.ok);
    assert.equal(result.break.sequence, 3);
    assert.equal(result.break.kind, 'prevHash');
    assert.equal(result.break.expected, second.hash);
    assert.equal(result.break.found, HASH_2);
  });

  test('detects a removed record', () => {
    const [first, , third] = buildThreeRecords();
    assert.ok(first, 'first record missing');
    assert.ok(third, 'third record missing');
    const result = verifyChain([first, third]);
    assert.ok(!result.ok);
    assert.equal(result.break.sequence, 2);
    assert.equal(result.break.kind, 'sequence');
    assert.equal(result.break.found, '3');
  });

  test('detects a substituted record id', () => {
    const records = buildThreeRecords().map((record) => ({ ...record }));
    const first = records[0];
    assert.ok(first);
    first.recordId = ID_2;
    const result = verifyChain(records);
    assert.ok(!result.ok);
    assert.equal(result.break.kind, 'recordId');
    assert.equal(result.break.expected, ID_1);
  });

  test('detects a chain not starting at genesis', () => {
    const [, second] = buildThreeRecords();
    assert.ok(second);
    const result = verifyChain([second]);
    assert.ok(!result.ok);
    assert.equal(result.break.kind, 'sequence');
    assert.match(result.break.message, /sequence 1: sequence mismatch, expected 1, found 2/);
  });
});

describe('verifyStoredChain', () => {
  test('verifies stored canonical text', () => {
    const rows = [
      { canonical: CANONICAL_1, hash: HASH_1 },
      { canonical: CANONICAL_2, hash: HASH_2 },
      { canonical: CANONICAL_3, hash: HASH_3 },
    ];
    assert.deepEqual(verifyStoredChain(rows), {
      ok: true,
      verified: 3,
      head: { sequence: 3, hash: HASH_3 },
    });
  });

  test('detects non-canonical stored text', () => {
    const reordered = JSON.stringify(JSON.parse(CANONICAL_1), null, 1);
    const result = verifyStoredChain([{ canonical: reordered, hash: HASH_1 }]);
    assert.ok(!result.ok);
    assert.equal(result.break.kind, 'canonical');
  });

  test('detects an unparseable stored row', () => {
    const result = verifyStoredChain([
      { canonical: CANONICAL_1, hash: HASH_1 },
      { canonical: '{"broken', hash: HASH_2 },
    ]);
    assert.ok(!result.ok);
    assert.equal(result.verified, 1);
    assert.equal(result.break.sequence, 2);
    assert.equal(result.break.kind, 'parse');
  });
});

describe('decodeRecord', () => {
  test('returns a published record', () => {
    const third = buildThreeRecords()[2];
    assert.ok(third);
    assert.deepEqual(decodeRecord(JSON.stringify(third)), third);
    assert.deepEqual(decodeRecord(utf8(JSON.stringify(third))), third);
  });

  test('rejects an edited record', () => {
    const third = buildThreeRecords()[2];
    assert.ok(third);
    const edited = JSON.stringify({ ...third, keyId: 'kt_000000000000000000000002' });
    assert.throws(
      () => decodeRecord(edited),
      (error: unknown) =>
        error instanceof InvalidAuditRecordError && /hash mismatch/.test(error.message),
    );
  });

  test('rejects a record id from another position', () => {
    const first = buildThreeRecords()[0];
    assert.ok(first);
    const moved = JSON.stringify({ ...first, source: { ...first.source, sequence: 2 } });
    assert.throws(() => decodeRecord(moved), /record id mismatch/);
  });

  test('rejects malformed input', () => {
    assert.throws(() => decodeRecord('{"broken'), /not valid JSON/);
    assert.throws(() => decodeRecord('null'), /missing its source/);
    assert.throws(
      () => decodeRecord('{"source":{"stream":"S","sequence":1},"prevHash":"x"}'),
      /malformed/,
    );
  });
});
