// Fault test: the HSM connector is killed right after the token made a key and before the
// outcome event was published. After a restart the redelivered operation must find that key,
// so the token holds one key and KMS_EVENTS holds one `key.created`.
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
import { BUCKETS, STREAMS, deriveKeyId, subjects } from '@keytower/contracts';

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
const TOKEN_LABEL = 'kt-e2e-crash';
const PIN = '424242';

interface Token {
  dir: string;
  conf: string;
  pinFile: string;
}

function createToken(): Token {
  const dir = mkdtempSync(join(tmpdir(), 'keytower-hsm-crash-'));
  mkdirSync(join(dir, 'tokens'));
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(
    conf,
    `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  const pinFile = join(dir, 'pin');
  writeFileSync(pinFile, PIN, { mode: 0o600 });
  execFileSync(
    'softhsm2-util',
    ['--init-token', '--free', '--label', TOKEN_LABEL, '--so-pin', '777777', '--pin', PIN],
    {
      env: { ...process.env, SOFTHSM2_CONF: conf },
      stdio: 'ignore',
    },
  );
  return { dir, conf, pinFile };
}

/** Counts the token objects labelled `label`, through pkcs11js in this process. */
function countTokenObjects(token: Token, label: string): number {
  process.env.SOFTHSM2_CONF = token.conf;
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
    const found = module.C_FindObjects(session, 100);
    module.C_FindObjectsFinal(session);
    return found.length;
  } finally {
    module.C_Finalize();
    module.close();
  }
}

async function startConnector(
  environment: NatsEnvironment,
  token: Token,
  env: Record<string, string> = {},
) {
  return startService(environment, 'connector-hsm', {
    env: {
      SOFTHSM2_CONF: token.conf,
      KEYTOWER_PKCS11_MODULE: SOFTHSM_MODULE,
      KEYTOWER_PKCS11_TOKEN_LABEL: TOKEN_LABEL,
      KEYTOWER_PKCS11_PIN_FILE: token.pinFile,
      ...env,
    },
    readyPattern: /connector consuming operations/,
  });
}

async function waitForExit(
  service: ServiceProcess,
  timeoutMs: number,
): Promise<NodeJS.Signals | null> {
  const { child } = service;
  if (child.exitCode !== null || child.signalCode !== null) {
    return child.signalCode;
  }
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_code, signal) => resolve(signal)),
  );
  const timeout = sleep(timeoutMs).then(() => {
    throw new Error(`${service.name} did not exit within ${timeoutMs} ms:\n${service.output()}`);
  });
  return Promise.race([exited, timeout]);
}

async function countKeyEvents(admin: Bus, keyId: string): Promise<Record<string, number>> {
  const info = await admin.manager.streams.info(STREAMS.events, {
    subjects_filter: `kms.evt.v1.*.*.${keyId}`,
  });
  return { ...(info.state.subjects ?? {}) };
}

let environment: NatsEnvironment;
let admin: Bus;
let cli: Bus;
let token: Token;
const services: ServiceProcess[] = [];

before(async () => {
  environment = await natsEnvironment();
  admin = await connectAs(environment, 'admin');
  cli = await connectAs(environment, 'cli');
  token = createToken();
  services.push(await startPolicy(environment));
});

after(async () => {
  for (const service of services) {
    await service.stop();
  }
  await cli.close();
  await admin.close();
  await environment.stop();
  rmSync(token.dir, { recursive: true, force: true });
});

describe('connector-hsm crash after the provider call', () => {
  it('makes one key and one created event', { timeout: 90_000 }, async () => {
    const crashing = await startConnector(environment, token, {
      KEYTOWER_TEST_PROFILE: 'true',
      KEYTOWER_CRASH_POINT: 'after-provider-call',
    });
    services.push(crashing);
    const capabilities = await (await admin.kv(BUCKETS.capabilities)).get('hsm');
    assert.equal(capabilities?.json<{ provider: string }>().provider, 'hsm');

    const command = commandEnvelope('create', {
      provider: 'hsm',
      purpose: 'encrypt',
      algorithm: 'AES_256',
      label: 'crash test',
    });
    const keyId = deriveKeyId(command.id);
    await sendCommand(cli, command);

    assert.equal(await waitForExit(crashing, 20_000), 'SIGKILL');
    assert.match(crashing.output(), /crash point after-provider-call/);
    assert.equal(
      countTokenObjects(token, `${keyId}/v1`),
      1,
      'the token made the key before the crash',
    );
    assert.deepEqual(
      await countKeyEvents(admin, keyId),
      {},
      'no outcome was published before the crash',
    );

    // JetStream redelivers the unacknowledged operation once its ack wait (30 s) has passed.
    const restarted = await startConnector(environment, token);
    services.push(restarted);
    const status = await waitForStatus(
      cli,
      command.id,
      (entry) => entry.status === 'succeeded',
      60_000,
    );

    assert.equal(status.terminalEvent?.type, 'keytower.event.key.created.v1');
    assert.equal(countTokenObjects(token, `${keyId}/v1`), 1);
    assert.deepEqual(await countKeyEvents(admin, keyId), {
      [subjects.keyEvent('created', keyId)]: 1,
    });
    assert.match(restarted.output(), /"alreadyDone":true/);
    assert.equal(crashing.output().includes(PIN), false, 'the PIN appears in the log');
    assert.equal(restarted.output().includes(PIN), false, 'the PIN appears in the log');
  });
});
