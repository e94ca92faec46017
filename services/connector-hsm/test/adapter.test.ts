import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import pkcs11 from 'pkcs11js';
import {
  AuthenticationError,
  CryptoRejectedError,
  InvalidStateError,
  KeyNotFoundError,
  UnavailableError,
} from '@keytower/provider';
import type { KeyAlgorithm, KeyPurpose } from '@keytower/contracts';
import type { KnownVersion } from '@keytower/provider';

import { HsmKeyProvider } from '../src/adapter.ts';
import { openPkcs11Client } from '../src/client.ts';
import type { Pkcs11Client } from '../src/client.ts';
import {
  SOFTHSM_MODULE,
  createTestToken,
  objectsByLabel,
  readClass,
  readFlags,
  silentLogger,
  withTokenSession,
} from './softhsm.ts';
import type { TestToken } from './softhsm.ts';

let token: TestToken;
let client: Pkcs11Client;
let provider: HsmKeyProvider;
let keyCounter = 0;

function newKeyId(): string {
  keyCounter += 1;
  return `kt_${process.pid.toString(16)}${keyCounter.toString(16).padStart(8, '0')}`;
}

function keyOptions(keyId: string, algorithm: KeyAlgorithm, versions: KnownVersion[] = []) {
  const purpose: KeyPurpose = algorithm === 'AES_256' ? 'encrypt' : 'sign';
  return {
    keyId,
    purpose,
    algorithm,
    label: `test ${keyId}`,
    tags: { team: 'platform' },
    versions,
  };
}

function countObjects(label: string): number {
  return withTokenSession(
    token,
    (module, session) => objectsByLabel(module, session, label).length,
  );
}

before(() => {
  token = createTestToken();
  client = openPkcs11Client({
    modulePath: SOFTHSM_MODULE,
    tokenLabel: token.label,
    pin: token.pin,
    logger: silentLogger,
  });
  provider = new HsmKeyProvider({ client });
});

after(async () => {
  await client.close();
  token.remove();
});

describe('HSM adapter create', () => {
  it('makes a protected AES-256 token object', async () => {
    const keyId = newKeyId();

    const result = await provider.createKey({ ...keyOptions(keyId, 'AES_256'), version: 1 });

    assert.equal(result.version, 1);
    assert.equal(result.alreadyExisted, false);
    assert.equal(result.nativeVersionId, Buffer.from(`${keyId}/v1`).toString('hex'));
    withTokenSession(token, (module, session) => {
      const handles = objectsByLabel(module, session, `${keyId}/v1`);
      assert.equal(handles.length, 1);
      const handle = handles[0] as Buffer;
      assert.equal(readClass(module, session, handle), pkcs11.CKO_SECRET_KEY);

      const flags = readFlags(module, session, handle, [
        'CKA_TOKEN',
        'CKA_PRIVATE',
        'CKA_SENSITIVE',
        'CKA_EXTRACTABLE',
        'CKA_ENCRYPT',
        'CKA_DECRYPT',
        'CKA_WRAP',
        'CKA_UNWRAP',
      ]);
      assert.deepEqual(flags, {
        CKA_TOKEN: true,
        CKA_PRIVATE: true,
        CKA_SENSITIVE: true,
        CKA_EXTRACTABLE: false,
        CKA_ENCRYPT: true,
        CKA_DECRYPT: true,
        CKA_WRAP: true,
        CKA_UNWRAP: true,
      });

      const [id, valueLength] = module.C_GetAttributeValue(session, handle, [
        { type: pkcs11.CKA_ID },
        { type: pkcs11.CKA_VALUE_LEN },
      ]);
      assert.equal(id?.value.toString('utf8'), `${keyId}/v1`);
      assert.equal(Number(valueLength?.value.readBigUInt64LE(0)), 32);
    });
  });

  it('reports the token and object in native state', async () => {
    const keyId = newKeyId();

    const result = await provider.createKey({ ...keyOptions(keyId, 'AES_256'), version: 1 });

    const native = result.native as {
      token: { label: string; serialNumber: string };
      mechanism: string;
      objects: unknown[];
    };
    assert.equal(native.token.label, token.label);
    assert.match(native.token.serialNumber, /^[0-9a-f]{16}$/);
    assert.equal(native.mechanism, 'CKM_AES_KEY_GEN');
    assert.equal(native.objects.length, 1);
    assert.doesNotMatch(JSON.stringify(result), /CKA_VALUE"/);
  });

  it('makes an EC P-256 pair that signs', async () => {
    const keyId = newKeyId();

    await provider.createKey({ ...keyOptions(keyId, 'EC_P256'), version: 1 });

    withTokenSession(token, (module, session) => {
      const handles = objectsByLabel(module, session, `${keyId}/v1`);
      assert.equal(handles.length, 2);
      const classes = handles.map((handle) => readClass(module, session, handle)).sort();
      assert.deepEqual(classes, [pkcs11.CKO_PUBLIC_KEY, pkcs11.CKO_PRIVATE_KEY].sort());

      const privateKey = handles.find(
        (handle) => readClass(module, session, handle) === pkcs11.CKO_PRIVATE_KEY,
      ) as Buffer;
      assert.deepEqual(
        readFlags(module, session, privateKey, [
          'CKA_TOKEN',
          'CKA_SENSITIVE',
          'CKA_EXTRACTABLE',
          'CKA_SIGN',
        ]),
        {
          CKA_TOKEN: true,
          CKA_SENSITIVE: true,
          CKA_EXTRACTABLE: false,
          CKA_SIGN: true,
        },
      );

      const digest = createHash('sha256').update('keytower').digest();
      module.C_SignInit(session, { mechanism: pkcs11.CKM_ECDSA }, privateKey);
      const signature = module.C_Sign(session, digest, Buffer.alloc(128));
      assert.equal(signature.length, 64);
    });
  });

  it('makes an RSA-3072 pair', async () => {
    const keyId = newKeyId();

    const result = await provider.createKey({ ...keyOptions(keyId, 'RSA_3072'), version: 1 });

    assert.equal(result.native.mechanism, 'CKM_RSA_PKCS_KEY_PAIR_GEN');
    withTokenSession(token, (module, session) => {
      const handles = objectsByLabel(module, session, `${keyId}/v1`);
      assert.equal(handles.length, 2);
      const publicKey = handles.find(
        (handle) => readClass(module, session, handle) === pkcs11.CKO_PUBLIC_KEY,
      ) as Buffer;
      const [bits] = module.C_GetAttributeValue(session, publicKey, [
        { type: pkcs11.CKA_MODULUS_BITS },
      ]);
      assert.equal(Number(bits?.value.readBigUInt64LE(0)), 3072);
    });
  });

  it('finds the object of a redelivered create', async () => {
    const keyId = newKeyId();
    const options = { ...keyOptions(keyId, 'EC_P256'), version: 1 };

    const first = await provider.createKey(options);
    const second = await provider.createKey(options);

    assert.equal(second.alreadyExisted, true);
    assert.equal(second.nativeVersionId, first.nativeVersionId);
    assert.equal(countObjects(`${keyId}/v1`), 2);
  });
});

describe('HSM adapter half-made versions', () => {
  it('rejects a pair with only one object', async () => {
    const keyId = newKeyId();
    await provider.createKey({ ...keyOptions(keyId, 'EC_P256'), version: 1 });
    withTokenSession(token, (module, session) => {
      const handles = objectsByLabel(module, session, `${keyId}/v1`);
      const publicKey = handles.find(
        (handle) => readClass(module, session, handle) === pkcs11.CKO_PUBLIC_KEY,
      );
      module.C_DestroyObject(session, publicKey as Buffer);
    });

    await assert.rejects(
      provider.createKey({ ...keyOptions(keyId, 'EC_P256'), version: 1 }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidStateError);
        assert.match(error.message, /as \[private\], expected \[private, public\]/);
        return true;
      },
    );
    assert.equal(countObjects(`${keyId}/v1`), 1);
  });
});

describe('HSM adapter rotate', () => {
  it('adds the next version as its own object', async () => {
    const keyId = newKeyId();
    const created = await provider.createKey({ ...keyOptions(keyId, 'AES_256'), version: 1 });
    const versions: KnownVersion[] = [
      { version: 1, nativeId: created.nativeVersionId, state: 'enabled' },
    ];

    const rotated = await provider.rotateKey({
      ...keyOptions(keyId, 'AES_256', versions),
      version: 2,
    });
    const redelivered = await provider.rotateKey({
      ...keyOptions(keyId, 'AES_256', versions),
      version: 2,
    });

    assert.equal(rotated.version, 2);
    assert.equal(rotated.alreadyExisted, false);
    assert.equal(redelivered.alreadyExisted, true);
    assert.equal(redelivered.nativeVersionId, rotated.nativeVersionId);
    assert.notEqual(rotated.nativeVersionId, created.nativeVersionId);
    assert.equal(countObjects(`${keyId}/v1`), 1);
    assert.equal(countObjects(`${keyId}/v2`), 1);
  });

  it('rejects a key with no version on the token', async () => {
    const keyId = newKeyId();

    await assert.rejects(
      provider.rotateKey({ ...keyOptions(keyId, 'AES_256'), version: 2 }),
      (error: unknown) => {
        assert.ok(error instanceof KeyNotFoundError);
        assert.match(error.message, new RegExp(keyId));
        return true;
      },
    );
    assert.equal(countObjects(`${keyId}/v2`), 0);
  });
});

describe('HSM adapter disable and enable', () => {
  it('clears and restores AES usage attributes', async () => {
    const keyId = newKeyId();
    await provider.createKey({ ...keyOptions(keyId, 'AES_256'), version: 1 });
    const usage = ['CKA_ENCRYPT', 'CKA_DECRYPT', 'CKA_WRAP', 'CKA_UNWRAP'] as const;

    const disabled = await provider.disableVersion({ ...keyOptions(keyId, 'AES_256'), version: 1 });

    assert.equal(disabled.native.complete, true);
    assert.equal(disabled.native.usage, 'cleared');
    withTokenSession(token, (module, session) => {
      const [handle] = objectsByLabel(module, session, `${keyId}/v1`);
      assert.deepEqual(readFlags(module, session, handle as Buffer, usage), {
        CKA_ENCRYPT: false,
        CKA_DECRYPT: false,
        CKA_WRAP: false,
        CKA_UNWRAP: false,
      });
      assert.throws(
        () => module.C_EncryptInit(session, { mechanism: pkcs11.CKM_AES_ECB }, handle as Buffer),
        /CKR_KEY_FUNCTION_NOT_PERMITTED/,
      );
    });

    await provider.enableVersion({ ...keyOptions(keyId, 'AES_256'), version: 1 });

    withTokenSession(token, (module, session) => {
      const [handle] = objectsByLabel(module, session, `${keyId}/v1`);
      assert.deepEqual(readFlags(module, session, handle as Buffer, usage), {
        CKA_ENCRYPT: true,
        CKA_DECRYPT: true,
        CKA_WRAP: true,
        CKA_UNWRAP: true,
      });
    });
  });

  it('clears sign and verify on a key pair', async () => {
    const keyId = newKeyId();
    await provider.createKey({ ...keyOptions(keyId, 'EC_P256'), version: 1 });

    const disabled = await provider.disableVersion({ ...keyOptions(keyId, 'EC_P256'), version: 1 });

    assert.equal((disabled.native.objects as unknown[]).length, 2);
    withTokenSession(token, (module, session) => {
      for (const handle of objectsByLabel(module, session, `${keyId}/v1`)) {
        const kind = readClass(module, session, handle);
        const name = kind === pkcs11.CKO_PRIVATE_KEY ? 'CKA_SIGN' : 'CKA_VERIFY';
        assert.equal(readFlags(module, session, handle, [name])[name], false, name);
      }
    });

    await provider.enableVersion({ ...keyOptions(keyId, 'EC_P256'), version: 1 });

    withTokenSession(token, (module, session) => {
      for (const handle of objectsByLabel(module, session, `${keyId}/v1`)) {
        const kind = readClass(module, session, handle);
        const name = kind === pkcs11.CKO_PRIVATE_KEY ? 'CKA_SIGN' : 'CKA_VERIFY';
        assert.equal(readFlags(module, session, handle, [name])[name], true, name);
      }
    });
  });

  it('reports a token that rejects every change', async () => {
    const keyId = newKeyId();
    // An object the token will not modify, standing in for a token that forbids usage changes.
    withTokenSession(token, (module, session) => {
      module.C_GenerateKey(session, { mechanism: pkcs11.CKM_AES_KEY_GEN }, [
        { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
        { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_AES },
        { type: pkcs11.CKA_VALUE_LEN, value: 32 },
        { type: pkcs11.CKA_TOKEN, value: true },
        { type: pkcs11.CKA_PRIVATE, value: true },
        { type: pkcs11.CKA_MODIFIABLE, value: false },
        { type: pkcs11.CKA_LABEL, value: `${keyId}/v1` },
        { type: pkcs11.CKA_ID, value: Buffer.from(`${keyId}/v1`) },
        { type: pkcs11.CKA_ENCRYPT, value: true },
      ]);
    });

    await assert.rejects(
      provider.disableVersion({ ...keyOptions(keyId, 'AES_256'), version: 1 }),
      (error: unknown) => {
        assert.ok(error instanceof CryptoRejectedError);
        assert.match(error.message, /rejected every usage attribute change/);
        assert.match(error.message, /CKA_ENCRYPT: CKR_ACTION_PROHIBITED/);
        return true;
      },
    );
    withTokenSession(token, (module, session) => {
      const [handle] = objectsByLabel(module, session, `${keyId}/v1`);
      assert.equal(readFlags(module, session, handle as Buffer, ['CKA_ENCRYPT']).CKA_ENCRYPT, true);
    });
  });

  it('rejects a version that does not exist', async () => {
    const keyId = newKeyId();
    await provider.createKey({ ...keyOptions(keyId, 'AES_256'), version: 1 });

    await assert.rejects(
      provider.disableVersion({ ...keyOptions(keyId, 'AES_256'), version: 7 }),
      KeyNotFoundError,
    );
  });
});

describe('HSM adapter destruction', () => {
  it('checks objects when scheduling and cancelling', async () => {
    const keyId = newKeyId();
    const created = await provider.createKey({ ...keyOptions(keyId, 'AES_256'), version: 1 });
    const versions: KnownVersion[] = [
      { version: 1, nativeId: created.nativeVersionId, state: 'enabled' },
    ];

    const scheduled = await provider.scheduleDestroy({
      ...keyOptions(keyId, 'AES_256', versions),
      pendingWindowSeconds: 2,
      destroyAfter: '2026-12-05T00:00:00Z',
    });
    const cancelled = await provider.cancelDestroy(keyOptions(keyId, 'AES_256', versions));

    assert.equal(scheduled.native.pendingWindow, 'enforced-by-keytower');
    assert.deepEqual(scheduled.native.versions, [{ version: 1, present: true }]);
    assert.deepEqual(cancelled.native.versions, [{ version: 1, present: true }]);
    assert.equal(countObjects(`${keyId}/v1`), 1);
  });

  it('rejects scheduling a key that is not on the token', async () => {
    const keyId = newKeyId();

    await assert.rejects(
      provider.scheduleDestroy({
        ...keyOptions(keyId, 'AES_256'),
        pendingWindowSeconds: 2,
        destroyAfter: '2026-12-05T00:00:00Z',
      }),
      KeyNotFoundError,
    );
  });

  it('removes every object of every version', async () => {
    const keyId = newKeyId();
    const first = await provider.createKey({ ...keyOptions(keyId, 'RSA_3072'), version: 1 });
    const versions: KnownVersion[] = [
      { version: 1, nativeId: first.nativeVersionId, state: 'enabled' },
    ];
    // Version 2 is left out of `versions`, as after a rotation whose outcome was never recorded.
    await provider.rotateKey({ ...keyOptions(keyId, 'RSA_3072', versions), version: 2 });

    const destroyed = await provider.destroyKey(keyOptions(keyId, 'RSA_3072', versions));

    assert.deepEqual(
      destroyed.versions.map((entry) => [entry.version, entry.alreadyGone]),
      [
        [1, false],
        [2, false],
      ],
    );
    assert.equal((destroyed.native.objects as unknown[]).length, 4);
    assert.equal(countObjects(`${keyId}/v1`), 0);
    assert.equal(countObjects(`${keyId}/v2`), 0);
  });

  it('treats a redelivered destroy as success', async () => {
    const keyId = newKeyId();
    const created = await provider.createKey({ ...keyOptions(keyId, 'AES_256'), version: 1 });
    const versions: KnownVersion[] = [
      { version: 1, nativeId: created.nativeVersionId, state: 'enabled' },
    ];
    await provider.destroyKey(keyOptions(keyId, 'AES_256', versions));

    const again = await provider.destroyKey(keyOptions(keyId, 'AES_256', versions));

    assert.deepEqual(again.versions, [
      { version: 1, nativeId: created.nativeVersionId, alreadyGone: true },
    ]);
  });

  it('leaves other keys untouched', async () => {
    const doomed = newKeyId();
    const kept = newKeyId();
    await provider.createKey({ ...keyOptions(doomed, 'AES_256'), version: 1 });
    await provider.createKey({ ...keyOptions(kept, 'AES_256'), version: 1 });

    await provider.destroyKey(keyOptions(doomed, 'AES_256'));

    assert.equal(countObjects(`${doomed}/v1`), 0);
    assert.equal(countObjects(`${kept}/v1`), 1);
  });
});

describe('HSM client', () => {
  it('keeps keys across a restart', async () => {
    const keyId = newKeyId();
    const created = await provider.createKey({ ...keyOptions(keyId, 'EC_P256'), version: 1 });
    const versions: KnownVersion[] = [
      { version: 1, nativeId: created.nativeVersionId, state: 'enabled' },
    ];

    await client.close();
    client = openPkcs11Client({
      modulePath: SOFTHSM_MODULE,
      tokenLabel: token.label,
      pin: token.pin,
      logger: silentLogger,
    });
    provider = new HsmKeyProvider({ client });
    const described = await provider.describeKey(keyOptions(keyId, 'EC_P256', versions));

    assert.deepEqual(described.versions, [
      { version: 1, nativeId: created.nativeVersionId, present: true, usable: true },
    ]);
  });

  it('maps a wrong PIN to AuthenticationError', async () => {
    // Login state belongs to the process, so a second client would receive
    // CKR_USER_ALREADY_LOGGED_IN; the wrong PIN is tried with no session open.
    await client.close();
    try {
      assertWrongPinRejected();
    } finally {
      client = openPkcs11Client({
        modulePath: SOFTHSM_MODULE,
        tokenLabel: token.label,
        pin: token.pin,
        logger: silentLogger,
      });
      provider = new HsmKeyProvider({ client });
    }
  });

  function assertWrongPinRejected(): void {
    assert.throws(
      () =>
        openPkcs11Client({
          modulePath: SOFTHSM_MODULE,
          tokenLabel: token.label,
          pin: '000000',
          logger: silentLogger,
        }),
      (error: unknown) => {
        assert.ok(error instanceof AuthenticationError);
        assert.match(error.message, /CKR_PIN_INCORRECT/);
        assert.match(error.message, /C_Login/);
        assert.equal(error.retryable, false);
        assert.doesNotMatch(error.message, /000000/);
        return true;
      },
    );
  }

  it('names an unknown token label', () => {
    assert.throws(
      () =>
        openPkcs11Client({
          modulePath: SOFTHSM_MODULE,
          tokenLabel: 'no-such-token',
          pin: token.pin,
          logger: silentLogger,
        }),
      (error: unknown) => {
        assert.ok(error instanceof UnavailableError);
        assert.match(error.message, /"no-such-token" not found/);
        assert.match(error.message, new RegExp(`"${token.label}"`));
        return true;
      },
    );
  });

  it('maps a template the token rejects', async () => {
    await assert.rejects(
      client.pool
        .use((session) =>
          client.module.C_GenerateKeyAsync(session, { mechanism: pkcs11.CKM_AES_KEY_GEN }, [
            { type: pkcs11.CKA_VALUE_LEN, value: 3 },
            { type: pkcs11.CKA_TOKEN, value: false },
          ]),
        )
        .catch(async (error: unknown) => {
          const { mapPkcs11Error } = await import('../src/errors.ts');
          throw mapPkcs11Error(error, 'C_GenerateKey');
        }),
      (error: unknown) => {
        assert.ok(error instanceof CryptoRejectedError);
        assert.match(error.message, /^C_GenerateKey failed: CKR_ATTRIBUTE_VALUE_INVALID/);
        return true;
      },
    );
  });
});
