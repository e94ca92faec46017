// The whole key lifecycle of one EC P-256 key through policy and the HSM connector, checking
// the SoftHSM2 token after every step: version objects, usage attributes, destruction.
//
// NATS comes from the test stack when KEYTOWER_STACK_FILE is set, otherwise from a private
// server (see policy-harness.ts). The SoftHSM2 token is always this suite's own, in a temp folder.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pkcs11 from 'pkcs11js';
import type { Bus } from '@keytower/bus';
import { deriveKeyId } from '@keytower/contracts';
import type { KeyAction } from '@keytower/contracts';

import {
  commandEnvelope,
  connectAs,
  natsEnvironment,
  sendCommand,
  startPolicy,
  startService,
  waitForStatus,
} from './policy-harness.ts';
import type { NatsEnvironment, ServiceProcess } from './policy-harness.ts';

const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const TOKEN_LABEL = 'kt-e2e-lifecycle';
const PIN = '535353';

interface TokenObject {
  kind: 'private' | 'public' | 'secret' | 'other';
  sign?: boolean;
  verify?: boolean;
}

let environment: NatsEnvironment;
let cli: Bus;
let tokenDir: string;
let tokenConf: string;
const services: ServiceProcess[] = [];

/** Lists the token objects labelled `label` with their usage flags, through pkcs11js directly. */
function tokenObjects(label: string): TokenObject[] {
  process.env.SOFTHSM2_CONF = tokenConf;
  const module = new pkcs11.PKCS11();
  module.load(SOFTHSM_MODULE);
  module.C_Initialize({ flags: pkcs11.CKF_OS_LOCKING_OK });
  try {
    const slot = module
      .C_GetSlotList(true)
      .find((candidate) => module.C_GetTokenInfo(candidate).label.trimEnd() === TOKEN_LABEL);
    assert.ok(slot, `token ${TOKEN_LABEL} not found`);
    const session = module.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
    module.C_Login(session, pkcs11.CKU_USER, PIN);
    module.C_FindObjectsInit(session, [
      { type: pkcs11.CKA_TOKEN, value: true },
      { type: pkcs11.CKA_LABEL, value: label },
    ]);
    const handles = module.C_FindObjects(session, 100);
    module.C_FindObjectsFinal(session);

    return handles
      .map((handle): TokenObject => {
        const [objectClass] = module.C_GetAttributeValue(session, handle, [
          { type: pkcs11.CKA_CLASS },
        ]);
        const value = Number(objectClass?.value.readBigUInt64LE(0));
        if (value === pkcs11.CKO_PRIVATE_KEY) {
          const [sign] = module.C_GetAttributeValue(session, handle, [{ type: pkcs11.CKA_SIGN }]);
          return { kind: 'private', sign: sign?.value[0] === 1 };
        }
        if (value === pkcs11.CKO_PUBLIC_KEY) {
          const [verify] = module.C_GetAttributeValue(session, handle, [
            { type: pkcs11.CKA_VERIFY },
          ]);
          return { kind: 'public', verify: verify?.value[0] === 1 };
        }
        return { kind: value === pkcs11.CKO_SECRET_KEY ? 'secret' : 'other' };
      })
      .sort((left, right) => left.kind.localeCompare(right.kind));
  } finally {
    module.C_Finalize();
    module.close();
  }
}

function connectorOutput(): string {
  return services.find((service) => service.name === 'connector-hsm')?.output() ?? '';
}

async function run(action: KeyAction, data: Record<string, unknown>) {
  const command = commandEnvelope(action, data);
  await sendCommand(cli, command);
  const status = await waitForStatus(cli, command.id, (entry) =>
    ['succeeded', 'failed', 'rejected', 'dead-lettered'].includes(entry.status),
  );
  assert.equal(status.status, 'succeeded', `${action}: ${JSON.stringify(status)}`);
  return { command, status };
}

before(async () => {
  tokenDir = mkdtempSync(join(tmpdir(), 'keytower-hsm-lifecycle-'));
  mkdirSync(join(tokenDir, 'tokens'));
  tokenConf = join(tokenDir, 'softhsm2.conf');
  writeFileSync(
    tokenConf,
    `directories.tokendir = ${join(tokenDir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  const pinFile = join(tokenDir, 'pin');
  writeFileSync(pinFile, PIN, { mode: 0o600 });
  execFileSync(
    'softhsm2-util',
    ['--init-token', '--free', '--label', TOKEN_LABEL, '--so-pin', '868686', '--pin', PIN],
    {
      env: { ...process.env, SOFTHSM2_CONF: tokenConf },
      stdio: 'ignore',
    },
  );

  environment = await natsEnvironment();
  cli = await connectAs(environment, 'cli');
  services.push(await startPolicy(environment));
  services.push(
    await startService(environment, 'connector-hsm', {
      env: {
        SOFTHSM2_CONF: tokenConf,
        KEYTOWER_PKCS11_MODULE: SOFTHSM_MODULE,
        KEYTOWER_PKCS11_TOKEN_LABEL: TOKEN_LABEL,
        KEYTOWER_PKCS11_PIN_FILE: pinFile,
        // Without KEYTOWER_TEST_PROFILE=true the connector must ignore the crash point.
        KEYTOWER_CRASH_POINT: 'after-provider-call',
      },
      readyPattern: /connector consuming operations/,
    }),
  );
});

after(async () => {
  for (const service of services) {
    await service.stop();
  }
  await cli.close();
  await environment.stop();
  rmSync(tokenDir, { recursive: true, force: true });
});

describe('connector-hsm key lifecycle through policy', () => {
  it('creates, rotates, disables, enables and destroys', { timeout: 60_000 }, async () => {
    const { command } = await run('create', {
      provider: 'hsm',
      purpose: 'sign',
      algorithm: 'EC_P256',
      label: 'lifecycle',
    });
    const keyId = deriveKeyId(command.id);
    assert.match(connectorOutput(), /crash point ignored: KEYTOWER_TEST_PROFILE is not true/);
    assert.deepEqual(tokenObjects(`${keyId}/v1`), [
      { kind: 'private', sign: true },
      { kind: 'public', verify: true },
    ]);

    const rotated = await run('rotate', { keyId });
    assert.equal(rotated.status.terminalEvent?.type, 'keytower.event.key.version-created.v1');
    assert.equal(tokenObjects(`${keyId}/v2`).length, 2);

    await run('disable', { keyId, version: 1 });
    assert.deepEqual(tokenObjects(`${keyId}/v1`), [
      { kind: 'private', sign: false },
      { kind: 'public', verify: false },
    ]);
    assert.deepEqual(tokenObjects(`${keyId}/v2`), [
      { kind: 'private', sign: true },
      { kind: 'public', verify: true },
    ]);

    await run('enable', { keyId, version: 1 });
    assert.deepEqual(tokenObjects(`${keyId}/v1`), [
      { kind: 'private', sign: true },
      { kind: 'public', verify: true },
    ]);

    await run('schedule-destroy', { keyId, pendingWindowSeconds: 1 });
    await run('cancel-destroy', { keyId });
    assert.equal(tokenObjects(`${keyId}/v1`).length, 2);

    await run('schedule-destroy', { keyId, pendingWindowSeconds: 1 });
    await sleep(1_200);
    await run('destroy', { keyId });
    assert.deepEqual(tokenObjects(`${keyId}/v1`), []);
    assert.deepEqual(tokenObjects(`${keyId}/v2`), []);
  });
});
