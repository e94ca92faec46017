import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { authorize, formatAllowList, parseAllowList } from '../src/authorize.ts';

describe('parseAllowList', () => {
  test('reads actions and wildcards', () => {
    const allowList = parseAllowList('user:alice=create,rotate; user:oncall=*');
    assert.equal(allowList.size, 2);
    assert.equal(allowList.get('user:oncall'), 'all');
    assert.deepEqual([...(allowList.get('user:alice') as Set<string>)], ['create', 'rotate']);
    assert.equal(formatAllowList(allowList), 'user:alice=create,rotate;user:oncall=*');
  });

  test('empty text allows nobody', () => {
    assert.equal(parseAllowList('').size, 0);
    assert.equal(parseAllowList(' ; ').size, 0);
  });

  test('rejects malformed entries', () => {
    assert.throws(() => parseAllowList('user:alice'), /invalid allow-list entry "user:alice"/);
    assert.throws(() => parseAllowList('alice=create'), /invalid actor "alice"/);
    assert.throws(
      () => parseAllowList('user:alice=creat'),
      /invalid action "creat".*expected \* or one of create, rotate/,
    );
    assert.throws(() => parseAllowList('user:alice=create;user:alice=rotate'), /appears twice/);
  });
});

describe('authorize', () => {
  const allowList = parseAllowList('user:alice=create,rotate;user:oncall=*');

  test('grants listed actions', () => {
    assert.deepEqual(
      authorize({ actor: 'user:alice', action: 'rotate', keyId: 'kt_1' }, allowList),
      { allowed: true },
    );
    assert.deepEqual(
      authorize({ actor: 'user:oncall', action: 'destroy', keyId: 'kt_1' }, allowList),
      { allowed: true },
    );
  });

  test('denies other actions and actors', () => {
    const denied = authorize({ actor: 'user:alice', action: 'destroy', keyId: 'kt_1' }, allowList);
    assert.equal(denied.allowed, false);
    const stranger = authorize({ actor: 'user:eve', action: 'create', keyId: null }, allowList);
    assert.equal(stranger.allowed, false);
    assert.match(
      stranger.allowed ? '' : stranger.message,
      /user:eve is not in the policy allow-list/,
    );
  });
});
