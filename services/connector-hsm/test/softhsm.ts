import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pkcs11 from 'pkcs11js';
import type { Handle } from 'pkcs11js';
import { pino } from 'pino';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

/** A fresh SoftHSM2 token in its own temp folder, with a known user PIN. */
export interface TestToken {
  dir: string;
  conf: string;
  label: string;
  pin: string;
  soPin: string;
  remove(): void;
}

/**
 * Creates a SoftHSM2 configuration in a new temp folder, points SOFTHSM2_CONF at it for this
 * process and initialises one token there. SoftHSM2 reads SOFTHSM2_CONF at C_Initialize, so
 * every test file gets its own process and token.
 */
export function createTestToken(label = `kt-test-${process.pid}`): TestToken {
  const dir = mkdtempSync(join(tmpdir(), 'keytower-hsm-'));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens);
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(
    conf,
    `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  process.env.SOFTHSM2_CONF = conf;

  const pin = '246810';
  const soPin = '135791';
  execFileSync(
    'softhsm2-util',
    ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', pin],
    {
      env: { ...process.env, SOFTHSM2_CONF: conf },
      stdio: 'ignore',
    },
  );

  return {
    dir,
    conf,
    label,
    pin,
    soPin,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A silent logger for components under test. */
export const silentLogger = pino({ level: 'silent' });

let inspector: pkcs11.PKCS11 | undefined;

/**
 * Runs `inspect` on a session of the token, opened through pkcs11js directly and independent of
 * the connector's client, so assertions never go through the code under test.
 */
export function withTokenSession<T>(
  token: TestToken,
  inspect: (module: pkcs11.PKCS11, session: Handle) => T,
): T {
  if (inspector === undefined) {
    inspector = new pkcs11.PKCS11();
    inspector.load(SOFTHSM_MODULE);
  }
  const module = inspector;
  try {
    module.C_Initialize({ flags: pkcs11.CKF_OS_LOCKING_OK });
  } catch (error) {
    if ((error as { code?: number }).code !== pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      throw error;
    }
  }

  const slot = module
    .C_GetSlotList(true)
    .find((candidate) => module.C_GetTokenInfo(candidate).label.trimEnd() === token.label);
  if (slot === undefined) {
    throw new Error(`test token "${token.label}" not found`);
  }
  const session = module.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
  try {
    try {
      module.C_Login(session, pkcs11.CKU_USER, token.pin);
    } catch (error) {
      if ((error as { code?: number }).code !== pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
        throw error;
      }
    }
    return inspect(module, session);
  } finally {
    module.C_CloseSession(session);
  }
}

/** Returns the handles of token objects labelled `label`. */
export function objectsByLabel(module: pkcs11.PKCS11, session: Handle, label: string): Handle[] {
  module.C_FindObjectsInit(session, [
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_LABEL, value: label },
  ]);
  try {
    return module.C_FindObjects(session, 100);
  } finally {
    module.C_FindObjectsFinal(session);
  }
}

/** Reads boolean attributes of an object as a name → value record. */
export function readFlags(
  module: pkcs11.PKCS11,
  session: Handle,
  handle: Handle,
  names: ReadonlyArray<keyof typeof pkcs11 & `CKA_${string}`>,
): Record<string, boolean> {
  const values = module.C_GetAttributeValue(
    session,
    handle,
    names.map((name) => ({ type: pkcs11[name] as number })),
  );
  return Object.fromEntries(names.map((name, index) => [name, values[index]?.value[0] === 1]));
}

/** Reads CKA_CLASS of an object. */
export function readClass(module: pkcs11.PKCS11, session: Handle, handle: Handle): number {
  const [attribute] = module.C_GetAttributeValue(session, handle, [{ type: pkcs11.CKA_CLASS }]);
  return Number(attribute?.value.readBigUInt64LE(0));
}
