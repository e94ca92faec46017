import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadConfig } from '@keytower/config';
import { policySettingsSchema } from '../src/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'keytower-policy-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const BASE = {
  KEYTOWER_NATS_URL: 'nats://127.0.0.1:4222',
  KEYTOWER_NATS_USER: 'policy',
  KEYTOWER_NATS_PASSWORD: 'secret',
};

describe('policy settings', () => {
  test('defaults: empty allow-list, no test profile', () => {
    const settings = loadConfig(policySettingsSchema, { service: 'policy', env: BASE });
    assert.equal(settings.policyAllow, '');
    assert.equal(settings.testProfile, false);
    assert.equal(settings.policyCommandConcurrency, 4);
    assert.equal(settings.crashPoint, undefined);
  });

  test('allow-list and test profile from the environment', () => {
    const settings = loadConfig(policySettingsSchema, {
      service: 'policy',
      env: { ...BASE, KEYTOWER_POLICY_ALLOW: 'user:alice=*', KEYTOWER_TEST_PROFILE: 'true' },
    });
    assert.equal(settings.policyAllow, 'user:alice=*');
    assert.equal(settings.testProfile, true);
  });

  test('allow-list from the config file', () => {
    const file = join(dir, 'policy.json');
    writeFileSync(file, JSON.stringify({ policyAllow: 'user:oncall=rotate,disable' }));
    const settings = loadConfig(policySettingsSchema, {
      service: 'policy',
      env: { ...BASE, KEYTOWER_CONFIG_FILE: file },
    });
    assert.equal(settings.policyAllow, 'user:oncall=rotate,disable');
  });

  test('invalid allow-list stops start-up', () => {
    assert.throws(
      () =>
        loadConfig(policySettingsSchema, {
          service: 'policy',
          env: { ...BASE, KEYTOWER_POLICY_ALLOW: 'user:alice=rotat' },
        }),
      /KEYTOWER_POLICY_ALLOW.*invalid action "rotat"/s,
    );
  });
});
