import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UsageError } from '../src/errors.ts';
import {
  parseActor,
  parseAlgorithm,
  parseKeyId,
  parsePendingWindow,
  parseProvider,
  parsePurpose,
  parseTags,
  parseTimeout,
  parseUlidOption,
  parseVersion,
} from '../src/inputs.ts';

function usageError(run: () => unknown, message: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.equal(error.exitCode, 2);
    assert.match(error.message, message);
    return true;
  });
}

describe('CLI input checks', () => {
  test('provider, purpose and algorithm', () => {
    assert.equal(parseProvider('hsm'), 'hsm');
    usageError(
      () => parseProvider('vault'),
      /invalid --provider "vault": expected one of hsm, aws, azure, gcp, oci/,
    );
    assert.equal(parsePurpose('sign'), 'sign');
    usageError(
      () => parsePurpose('wrap'),
      /invalid --purpose "wrap": expected one of encrypt, sign/,
    );
    assert.equal(parseAlgorithm('EC_P256', 'sign'), 'EC_P256');
    usageError(
      () => parseAlgorithm('DES', 'encrypt'),
      /invalid --algorithm "DES": expected one of AES_256, EC_P256, RSA_3072/,
    );
    usageError(
      () => parseAlgorithm('RSA_3072', 'encrypt'),
      /for --purpose encrypt: expected one of AES_256/,
    );
  });

  test('key id, actor and version', () => {
    assert.equal(parseKeyId('kt_0123456789abcdef01234567'), 'kt_0123456789abcdef01234567');
    usageError(() => parseKeyId('kt.0123'), /invalid key id "kt.0123"/);
    usageError(() => parseKeyId(''), /invalid key id ""/);
    assert.equal(parseActor('user:alice'), 'user:alice');
    usageError(() => parseActor('alice'), /invalid --actor "alice": expected user:<name>/);
    assert.equal(parseVersion('3'), 3);
    usageError(() => parseVersion(undefined), /missing --version <number>/);
    usageError(() => parseVersion('0'), /invalid --version "0"/);
    usageError(() => parseVersion('1.5'), /invalid --version "1.5"/);
  });

  test('pending window and timeout', () => {
    assert.equal(parsePendingWindow('604800'), 604800);
    assert.equal(parsePendingWindow('1'), 1);
    usageError(
      () => parsePendingWindow('2592001'),
      /invalid --pending-window 2592001: expected at most 2592000 seconds/,
    );
    // The floor depends on policy's profile, so the CLI leaves it to policy.
    assert.equal(parsePendingWindow('60'), 60);
    usageError(() => parsePendingWindow('0'), /invalid --pending-window "0"/);
    usageError(
      () => parsePendingWindow('7d'),
      /invalid --pending-window "7d": expected a positive whole number of seconds/,
    );
    assert.equal(parseTimeout('30'), 30);
    usageError(() => parseTimeout('-1'), /invalid --timeout "-1"/);
  });

  test('tags', () => {
    assert.deepEqual(parseTags(['team=payments', 'env=prod=eu']), {
      team: 'payments',
      env: 'prod=eu',
    });
    assert.deepEqual(parseTags([]), {});
    usageError(() => parseTags(['team']), /invalid --tag "team": expected name=value/);
    usageError(() => parseTags(['bad name=x']), /invalid --tag name "bad name"/);
    usageError(
      () => parseTags(['env=prod', 'team=payments', 'env=dev']),
      /duplicate --tag "env": give each tag name once \(received env=prod and env=dev\)/,
    );
    usageError(() => parseTags(['env=prod', 'env=prod']), /duplicate --tag "env"/);
  });

  test('command ids must be ULIDs', () => {
    assert.equal(
      parseUlidOption('--command-id', '01JF3Q7ZK8M4N2P5R6S7T8V9W0'),
      '01JF3Q7ZK8M4N2P5R6S7T8V9W0',
    );
    const invalid = [
      'my-command-1',
      '01jf3q7zk8m4n2p5r6s7t8v9w0',
      '01JF3Q7ZK8M4N2P5R6S7T8V9W',
      '01JF3Q7ZK8M4N2P5R6S7T8V9W00',
      '01JF3Q7ZK8M4N2P5R6S7T8V9WI',
      '81JF3Q7ZK8M4N2P5R6S7T8V9W0',
      '',
    ];
    for (const value of invalid) {
      usageError(
        () => parseUlidOption('--retry-of', value),
        new RegExp(`invalid --retry-of "${value}": expected a ULID`),
      );
    }
  });
});
