import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import {
  ConfigError,
  commonSettingsSchema,
  isConfigError,
  loadConfig,
  settingNames,
  variableName,
} from '../src/index.ts';

const BASE_ENV = {
  KEYTOWER_NATS_URL: 'nats://127.0.0.1:4222',
  KEYTOWER_NATS_USER: 'policy',
  KEYTOWER_NATS_PASSWORD: 's3cret-value',
};

const serviceSchema = commonSettingsSchema.extend({
  kafkaBrokers: z.array(z.string().min(1)).min(1),
  testProfile: z.boolean().default(false),
  pkcs11Pin: z.string().min(4).optional(),
});

describe('loadConfig', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'keytower-config-test-'));
  });

  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function writeFile(name: string, content: string): string {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  }

  test('valid environment', () => {
    const config = loadConfig(serviceSchema, {
      service: 'sink-kafka',
      env: {
        ...BASE_ENV,
        KEYTOWER_HEALTH_PORT: '9464',
        KEYTOWER_KAFKA_BROKERS: '127.0.0.1:9092, 127.0.0.1:9093',
        KEYTOWER_TEST_PROFILE: 'true',
        UNRELATED: 'ignored',
      },
    });

    assert.equal(config.natsUrl, 'nats://127.0.0.1:4222');
    assert.equal(config.natsPassword, 's3cret-value');
    assert.equal(config.healthPort, 9464);
    assert.equal(config.logLevel, 'info');
    assert.deepEqual(config.kafkaBrokers, ['127.0.0.1:9092', '127.0.0.1:9093']);
    assert.equal(config.testProfile, true);
    assert.equal(config.otlpEndpoint, undefined);
  });

  test('missing required setting', () => {
    const env: Record<string, string> = { ...BASE_ENV, KEYTOWER_KAFKA_BROKERS: 'k:9092' };
    delete env.KEYTOWER_NATS_URL;

    assert.throws(
      () => loadConfig(serviceSchema, { service: 'sink-kafka', env }),
      (error: unknown) => {
        assert.ok(isConfigError(error));
        assert.equal(
          error.message,
          'invalid configuration for sink-kafka: KEYTOWER_NATS_URL: expected string, received nothing',
        );
        assert.equal(error.issues[0]?.source, 'KEYTOWER_NATS_URL');
        return true;
      },
    );
  });

  test('wrong type names variable and value', () => {
    assert.throws(
      () =>
        loadConfig(serviceSchema, {
          service: 'policy',
          env: { ...BASE_ENV, KEYTOWER_KAFKA_BROKERS: 'k:9092', KEYTOWER_HEALTH_PORT: 'eighty' },
        }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(
          error.message,
          'invalid configuration for policy: KEYTOWER_HEALTH_PORT: expected number, received "eighty"',
        );
        return true;
      },
    );
  });

  test('out of range number names the bound', () => {
    assert.throws(
      () =>
        loadConfig(serviceSchema, {
          service: 'policy',
          env: { ...BASE_ENV, KEYTOWER_KAFKA_BROKERS: 'k:9092', KEYTOWER_HEALTH_PORT: '70000' },
        }),
      /KEYTOWER_HEALTH_PORT: expected a number at most 65535, received 70000/,
    );
  });

  test('invalid enum lists allowed values', () => {
    assert.throws(
      () =>
        loadConfig(serviceSchema, {
          service: 'policy',
          env: { ...BASE_ENV, KEYTOWER_KAFKA_BROKERS: 'k:9092', KEYTOWER_LOG_LEVEL: 'loud' },
        }),
      /KEYTOWER_LOG_LEVEL: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", received "loud"/,
    );
  });

  test('invalid secret is redacted', () => {
    assert.throws(
      () =>
        loadConfig(serviceSchema, {
          service: 'connector-hsm',
          env: { ...BASE_ENV, KEYTOWER_KAFKA_BROKERS: 'k:9092', KEYTOWER_PKCS11_PIN: '12' },
        }),
      (error: unknown) => {
        assert.ok(isConfigError(error));
        assert.match(
          error.message,
          /KEYTOWER_PKCS11_PIN: expected a string of at least 4 characters, received <redacted>/,
        );
        assert.doesNotMatch(error.message, /"12"/);
        return true;
      },
    );
  });

  test('unknown file key is an error', () => {
    const path = writeFile(
      'unknown.json',
      JSON.stringify({ natsUrl: 'nats://127.0.0.1:4222', natsUrll: 'typo' }),
    );
    assert.throws(
      () =>
        loadConfig(serviceSchema, {
          service: 'policy',
          env: { ...BASE_ENV, KEYTOWER_KAFKA_BROKERS: 'k:9092', KEYTOWER_CONFIG_FILE: path },
        }),
      (error: unknown) => {
        assert.ok(isConfigError(error));
        assert.match(error.message, new RegExp(`unknown setting "natsUrll" in ${path}`));
        return true;
      },
    );
  });

  test('file supplies what the environment leaves out', () => {
    const path = writeFile(
      'settings.json',
      JSON.stringify({ kafkaBrokers: ['a:9092'], logLevel: 'debug' }),
    );
    const config = loadConfig(serviceSchema, {
      service: 'sink-kafka',
      env: { ...BASE_ENV, KEYTOWER_CONFIG_FILE: path },
    });
    assert.deepEqual(config.kafkaBrokers, ['a:9092']);
    assert.equal(config.logLevel, 'debug');
  });

  test('password read from file', () => {
    const path = writeFile('nats.password', 'from-file-password\n');
    const env: Record<string, string> = {
      ...BASE_ENV,
      KEYTOWER_KAFKA_BROKERS: 'k:9092',
      KEYTOWER_NATS_PASSWORD_FILE: path,
    };
    delete env.KEYTOWER_NATS_PASSWORD;

    const config = loadConfig(serviceSchema, { service: 'policy', env });

    assert.equal(config.natsPassword, 'from-file-password');
  });

  test('password and password file together are an error', () => {
    const path = writeFile('both.password', 'other');
    assert.throws(
      () =>
        loadConfig(serviceSchema, {
          service: 'policy',
          env: { ...BASE_ENV, KEYTOWER_KAFKA_BROKERS: 'k:9092', KEYTOWER_NATS_PASSWORD_FILE: path },
        }),
      /KEYTOWER_NATS_PASSWORD and KEYTOWER_NATS_PASSWORD_FILE are both set; set only one of them/,
    );
  });

  test('env and file disagreeing names both', () => {
    const path = writeFile(
      'disagree.json',
      JSON.stringify({ natsUser: 'audit', natsPassword: 'file-secret' }),
    );
    const env = { ...BASE_ENV, KEYTOWER_KAFKA_BROKERS: 'k:9092', KEYTOWER_CONFIG_FILE: path };

    assert.throws(
      () => loadConfig(commonSettingsSchema.extend({}), { service: 'audit', env }),
      (error: unknown) => {
        assert.ok(isConfigError(error));
        assert.equal(
          error.message,
          `invalid configuration for audit: KEYTOWER_NATS_USER="policy" disagrees with natsUser in ${path}="audit"; remove one of them`,
        );
        return true;
      },
    );

    const secretPath = writeFile(
      'disagree-secret.json',
      JSON.stringify({ natsPassword: 'file-secret' }),
    );
    assert.throws(
      () =>
        loadConfig(commonSettingsSchema, {
          service: 'audit',
          env: { ...env, KEYTOWER_CONFIG_FILE: secretPath },
        }),
      (error: unknown) => {
        assert.ok(isConfigError(error));
        assert.match(
          error.message,
          /KEYTOWER_NATS_PASSWORD=<redacted> disagrees with natsPassword in .*=<redacted>/,
        );
        assert.doesNotMatch(error.message, /file-secret|s3cret-value/);
        return true;
      },
    );
  });

  test('env and file agreeing is accepted', () => {
    const path = writeFile('agree.json', JSON.stringify({ natsUser: 'policy', healthPort: 9000 }));
    const config = loadConfig(commonSettingsSchema, {
      service: 'policy',
      env: { ...BASE_ENV, KEYTOWER_CONFIG_FILE: path, KEYTOWER_HEALTH_PORT: '9000' },
    });
    assert.equal(config.healthPort, 9000);
  });

  test('setting names cover keys and secret files', () => {
    const names = settingNames(serviceSchema);
    for (const expected of [
      'KEYTOWER_CONFIG_FILE',
      'KEYTOWER_NATS_URL',
      'KEYTOWER_NATS_PASSWORD',
      'KEYTOWER_NATS_PASSWORD_FILE',
      'KEYTOWER_OTLP_ENDPOINT',
      'KEYTOWER_KAFKA_BROKERS',
      'KEYTOWER_PKCS11_PIN',
      'KEYTOWER_PKCS11_PIN_FILE',
    ]) {
      assert.ok(names.includes(expected), `missing ${expected}`);
    }
    assert.ok(!names.includes('KEYTOWER_NATS_URL_FILE'));
  });

  test('schema key owning a _FILE name wins', () => {
    const schema = commonSettingsSchema.extend({
      pkcs11Pin: z.string().optional(),
      pkcs11PinFile: z.string().optional(),
    });
    assert.equal(variableName('pkcs11PinFile'), 'KEYTOWER_PKCS11_PIN_FILE');
    const config = loadConfig(schema, {
      service: 'connector-hsm',
      env: { ...BASE_ENV, KEYTOWER_PKCS11_PIN_FILE: '/run/secrets/pin' },
    });
    assert.equal(config.pkcs11PinFile, '/run/secrets/pin');
    assert.equal(config.pkcs11Pin, undefined);
    assert.equal(
      settingNames(schema).filter((name) => name === 'KEYTOWER_PKCS11_PIN_FILE').length,
      1,
    );
  });
});
