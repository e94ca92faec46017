import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { resolveConnection } from '../src/connection.ts';

const dir = mkdtempSync(join(tmpdir(), 'keytower-cli-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function descriptor(): string {
  const path = join(dir, 'stack.json');
  writeFileSync(
    path,
    JSON.stringify({
      profile: 'unit',
      nats: {
        url: 'nats://127.0.0.1:54999',
        users: {
          cli: { user: 'cli', password: 'cli-secret' },
          admin: { user: 'admin', password: 'admin-secret' },
        },
      },
      clickhouse: {
        url: 'http://127.0.0.1:58123',
        database: 'keytower',
        user: 'default',
        password: '',
      },
      kafka: { brokers: ['127.0.0.1:59092'], topic: 'keytower.audit.v1' },
      hsm: {
        module: '/usr/lib/softhsm/libsofthsm2.so',
        softhsm2Conf: 'x',
        tokenLabel: 'keytower',
        pinFile: 'x',
        soPinFile: 'x',
      },
      secretsDir: dir,
    }),
  );
  return path;
}

describe('resolveConnection', () => {
  test('stack descriptor picks the role user', () => {
    const path = descriptor();
    const cli = resolveConnection(path, 'cli', {});
    assert.equal(cli.servers, 'nats://127.0.0.1:54999');
    assert.equal(cli.user, 'cli');
    assert.equal(cli.password, 'cli-secret');
    assert.equal(cli.origin, 'stack profile unit');
    assert.equal(resolveConnection(path, 'admin', {}).user, 'admin');
  });

  test('KEYTOWER_STACK_FILE is used without a URL', () => {
    const path = descriptor();
    const settings = resolveConnection(undefined, 'cli', { KEYTOWER_STACK_FILE: path });
    assert.equal(settings.password, 'cli-secret');
  });

  test('environment variables win over the stack file', () => {
    const settings = resolveConnection(undefined, 'cli', {
      KEYTOWER_STACK_FILE: descriptor(),
      KEYTOWER_NATS_URL: 'nats://127.0.0.1:4222',
      KEYTOWER_NATS_PASSWORD: 'from-env',
    });
    assert.equal(settings.servers, 'nats://127.0.0.1:4222');
    assert.equal(settings.user, 'cli');
    assert.equal(settings.password, 'from-env');
  });

  test('password file is read', () => {
    const passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, 'from-file\n');
    const settings = resolveConnection(undefined, 'admin', {
      KEYTOWER_NATS_URL: 'nats://127.0.0.1:4222',
      KEYTOWER_NATS_USER: 'admin',
      KEYTOWER_NATS_PASSWORD_FILE: passwordFile,
    });
    assert.equal(settings.user, 'admin');
    assert.equal(settings.password, 'from-file');
  });

  test('missing password names the variable', () => {
    assert.throws(
      () => resolveConnection(undefined, 'cli', { KEYTOWER_NATS_URL: 'nats://127.0.0.1:4222' }),
      /KEYTOWER_NATS_PASSWORD/,
    );
  });

  test('missing role in the descriptor', () => {
    const path = join(dir, 'partial.json');
    const full = JSON.parse(
      JSON.stringify({
        profile: 'unit',
        nats: { url: 'nats://127.0.0.1:54999', users: { admin: { user: 'admin', password: 'a' } } },
        clickhouse: {
          url: 'http://127.0.0.1:58123',
          database: 'keytower',
          user: 'default',
          password: '',
        },
        kafka: { brokers: ['127.0.0.1:59092'], topic: 't' },
        hsm: { module: 'm', softhsm2Conf: 'x', tokenLabel: 'k', pinFile: 'x', soPinFile: 'x' },
        secretsDir: dir,
      }),
    );
    writeFileSync(path, JSON.stringify(full));
    assert.throws(() => resolveConnection(path, 'cli', {}), /has no NATS user "cli"/);
  });
});
