import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '@keytower/config';

import { hsmSettingsSchema } from '../src/config.ts';

const common = {
  KEYTOWER_NATS_URL: 'nats://127.0.0.1:34222',
  KEYTOWER_NATS_USER: 'connector-hsm',
  KEYTOWER_NATS_PASSWORD: 'nats-secret',
  KEYTOWER_PKCS11_TOKEN_LABEL: 'keytower',
};

describe('HSM connector settings', () => {
  it('reads the PIN from the environment with defaults', () => {
    const settings = loadConfig(hsmSettingsSchema, {
      service: 'connector-hsm',
      env: { ...common, KEYTOWER_PKCS11_PIN: '123456' },
    });

    assert.equal(settings.pkcs11Pin, '123456');
    assert.equal(settings.pkcs11Module, '/usr/lib/softhsm/libsofthsm2.so');
    assert.equal(settings.pkcs11SessionPoolSize, 4);
    assert.equal(settings.testProfile, false);
    assert.equal(settings.crashPoint, undefined);
  });

  it('reads the PIN from a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keytower-hsm-config-'));
    try {
      const pinFile = join(dir, 'pin');
      writeFileSync(pinFile, '654321\n', { mode: 0o600 });

      const settings = loadConfig(hsmSettingsSchema, {
        service: 'connector-hsm',
        env: {
          ...common,
          KEYTOWER_PKCS11_PIN_FILE: pinFile,
          KEYTOWER_CRASH_POINT: 'after-provider-call',
        },
      });

      assert.equal(settings.pkcs11Pin, '654321');
      assert.equal(settings.crashPoint, 'after-provider-call');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects an unknown crash point without showing the PIN', () => {
    assert.throws(
      () =>
        loadConfig(hsmSettingsSchema, {
          service: 'connector-hsm',
          env: {
            ...common,
            KEYTOWER_PKCS11_PIN: '987654',
            KEYTOWER_CRASH_POINT: 'before-everything',
          },
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /KEYTOWER_CRASH_POINT/);
        assert.doesNotMatch(error.message, /987654/);
        return true;
      },
    );
  });

  it('requires a token label and a PIN', () => {
    assert.throws(
      () =>
        loadConfig(hsmSettingsSchema, {
          service: 'connector-hsm',
          env: { ...common, KEYTOWER_PKCS11_TOKEN_LABEL: '' },
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /KEYTOWER_PKCS11_PIN/);
        return true;
      },
    );
  });
});
