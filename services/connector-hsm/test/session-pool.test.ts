import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import pkcs11 from 'pkcs11js';
import type { Handle } from 'pkcs11js';

import { HsmKeyProvider } from '../src/adapter.ts';
import { openPkcs11Client } from '../src/client.ts';
import { ckrCode, ckrName } from '../src/errors.ts';
import { findObjects } from '../src/objects.ts';
import type { Pkcs11Module } from '../src/session-pool.ts';
import { SOFTHSM_MODULE, createTestToken, silentLogger, withTokenSession } from './softhsm.ts';
import type { TestToken } from './softhsm.ts';

interface RecordedCall {
  name: string;
  result: string;
  /** Operations holding a session when the call was made. */
  activeOperations: number;
}

let token: TestToken;

before(() => {
  token = createTestToken();
});

after(() => {
  token.remove();
});

/** Wraps the real module so each session and login call is recorded, then forwarded unchanged. */
function recordingModule(
  module: Pkcs11Module,
  calls: RecordedCall[],
  active: () => number,
): Pkcs11Module {
  const recorded = new Set(['C_Login', 'C_Logout', 'C_OpenSession', 'C_CloseSession']);
  return new Proxy(module, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof property !== 'string' || !recorded.has(property) || typeof value !== 'function') {
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return (...args: unknown[]) => {
        try {
          const result = (value as (...callArgs: unknown[]) => unknown).apply(target, args);
          calls.push({ name: property, result: 'CKR_OK', activeOperations: active() });
          return result;
        } catch (error) {
          const code = ckrCode(error);
          calls.push({
            name: property,
            result: code === undefined ? 'error' : ckrName(code),
            activeOperations: active(),
          });
          throw error;
        }
      };
    },
  });
}

describe('PKCS#11 session pool', () => {
  it('signs concurrently while a session is recycled', async () => {
    const calls: RecordedCall[] = [];
    let activeOperations = 0;
    const client = openPkcs11Client({
      modulePath: SOFTHSM_MODULE,
      tokenLabel: token.label,
      pin: token.pin,
      poolSize: 4,
      logger: silentLogger,
      wrapModule: (module) => recordingModule(module, calls, () => activeOperations),
    });
    try {
      const provider = new HsmKeyProvider({ client });
      const keyId = 'kt_pool000000000000000001';
      await provider.createKey({
        keyId,
        purpose: 'sign',
        algorithm: 'EC_P256',
        label: 'pool test',
        tags: {},
        versions: [],
        version: 1,
      });
      const privateKey = await client.pool.use((session) => {
        const [handle] = findObjects(client.module, session, [
          { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PRIVATE_KEY },
          { type: pkcs11.CKA_LABEL, value: `${keyId}/v1` },
        ]);
        return handle as Handle;
      });

      const digest = createHash('sha256').update('field case K05').digest();
      const busySessions = new Set<string>();
      let maxConcurrent = 0;
      let overlapped = false;
      let recycled = false;
      const runStart = calls.length;

      const signatures = await Promise.all(
        Array.from({ length: 40 }, (_, index) =>
          client.pool.use(async (session) => {
            const sessionKey = session.toString('hex');
            if (busySessions.has(sessionKey)) {
              overlapped = true;
            }
            busySessions.add(sessionKey);
            activeOperations += 1;
            maxConcurrent = Math.max(maxConcurrent, activeOperations);
            try {
              if (index === 10 && !recycled) {
                // The token drops this session under the running operation.
                recycled = true;
                withTokenSession(token, (module) => module.C_CloseSession(session));
              }
              client.module.C_SignInit(session, { mechanism: pkcs11.CKM_ECDSA }, privateKey);
              return await client.module.C_SignAsync(session, digest, Buffer.alloc(64));
            } finally {
              activeOperations -= 1;
              busySessions.delete(sessionKey);
            }
          }),
        ),
      );

      assert.equal(signatures.length, 40);
      for (const signature of signatures) {
        assert.equal(signature.length, 64);
      }
      assert.equal(overlapped, false, 'two operations shared a session');
      assert.ok(maxConcurrent <= 4, `at most 4 operations at once, saw ${maxConcurrent}`);
      assert.equal(recycled, true);

      const duringRun = calls.slice(runStart);
      const logins = duringRun.filter((call) => call.name === 'C_Login');
      assert.deepEqual(
        logins.map((call) => call.result),
        ['CKR_USER_ALREADY_LOGGED_IN'],
        'the replacement session logs in once and finds the token logged in',
      );
      assert.equal(duringRun.filter((call) => call.name === 'C_OpenSession').length, 1);
      assert.equal(duringRun.filter((call) => call.name === 'C_Logout').length, 0);

      const initialLogins = calls.slice(0, runStart).filter((call) => call.name === 'C_Login');
      assert.equal(initialLogins[0]?.result, 'CKR_OK');
      assert.ok(
        initialLogins.slice(1).every((call) => call.result === 'CKR_USER_ALREADY_LOGGED_IN'),
      );
    } finally {
      await client.close();
    }

    const logouts = calls.filter((call) => call.name === 'C_Logout');
    assert.equal(logouts.length, 1);
    assert.equal(logouts[0]?.activeOperations, 0);
    assert.equal(calls.at(-1)?.name, 'C_CloseSession');
  });

  it('waits for lent sessions before logging out', async () => {
    const calls: RecordedCall[] = [];
    let activeOperations = 0;
    const client = openPkcs11Client({
      modulePath: SOFTHSM_MODULE,
      tokenLabel: token.label,
      pin: token.pin,
      poolSize: 2,
      logger: silentLogger,
      wrapModule: (module) => recordingModule(module, calls, () => activeOperations),
    });

    let release: () => void = () => {};
    const held = client.pool.use(async () => {
      activeOperations += 1;
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      activeOperations -= 1;
      return 'done';
    });
    const closing = client.close();
    await new Promise((resolve) => setTimeout(resolve, 50));

    assert.equal(calls.filter((call) => call.name === 'C_Logout').length, 0);
    await assert.rejects(
      client.pool.use(() => 'late'),
      /session pool is closed/,
    );

    release();
    assert.equal(await held, 'done');
    await closing;
    assert.equal(calls.filter((call) => call.name === 'C_Logout').length, 1);
  });
});
