import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pkcs11 from 'pkcs11js';
import {
  AuthenticationError,
  CryptoRejectedError,
  KeyNotFoundError,
  NotSupportedError,
  ProviderError,
  UnavailableError,
} from '@keytower/provider';

import { CLASS_BY_CKR, ckrCode, ckrName, ckrValue, mapPkcs11Error } from '../src/errors.ts';

function pkcs11Error(code: number, method = ''): Error {
  return new pkcs11.Pkcs11Error(`${ckrName(code)}:${code}`, code, method);
}

describe('CKR mapping', () => {
  it('knows every CKR name it maps', () => {
    for (const [, names] of CLASS_BY_CKR) {
      for (const name of names) {
        assert.notEqual(ckrValue(name), undefined, name);
      }
    }
  });

  it('maps codes to their error class', () => {
    const cases = [
      [pkcs11.CKR_PIN_INCORRECT, AuthenticationError],
      [pkcs11.CKR_OBJECT_HANDLE_INVALID, KeyNotFoundError],
      [pkcs11.CKR_MECHANISM_INVALID, NotSupportedError],
      [pkcs11.CKR_TEMPLATE_INCONSISTENT, CryptoRejectedError],
      [pkcs11.CKR_DEVICE_ERROR, UnavailableError],
      [pkcs11.CKR_GENERAL_ERROR, UnavailableError],
      [pkcs11.CKR_SESSION_HANDLE_INVALID, UnavailableError],
    ] as const;

    for (const [code, ErrorClass] of cases) {
      const mapped = mapPkcs11Error(pkcs11Error(code), 'C_Test');
      assert.ok(mapped instanceof ErrorClass, `${ckrName(code)} → ${mapped.name}`);
      assert.match(mapped.message, new RegExp(ckrName(code)));
    }
  });

  it('names the function and the result', () => {
    const mapped = mapPkcs11Error(pkcs11Error(pkcs11.CKR_PIN_INCORRECT, 'C_Login'), 'C_Other');

    assert.equal(mapped.message, 'C_Login failed: CKR_PIN_INCORRECT (0xa0)');
    assert.equal(mapped.provider, 'hsm');
  });

  it('reads codes from unwrapped native errors', () => {
    const native = new Error('CKR_VENDOR_DEFINED:27');

    assert.equal(ckrCode(native), 0x1b);
    const mapped = mapPkcs11Error(native, 'C_SetAttributeValue');
    assert.ok(mapped instanceof CryptoRejectedError);
    assert.equal(mapped.message, 'C_SetAttributeValue failed: CKR_ACTION_PROHIBITED (0x1b)');
  });

  it('maps unknown codes to a non-retryable internal error', () => {
    const mapped = mapPkcs11Error(pkcs11Error(0x8000_0001), 'C_Test');

    assert.equal(mapped.code, 'internal');
    assert.equal(mapped.retryable, false);
    assert.match(mapped.message, /CKR_0x80000001/);
  });

  it('passes provider errors through', () => {
    const original = new KeyNotFoundError('gone', { provider: 'hsm' });

    assert.equal(mapPkcs11Error(original, 'C_Test'), original);
    assert.ok(mapPkcs11Error(new TypeError('bad argument'), 'C_Test') instanceof ProviderError);
  });
});
