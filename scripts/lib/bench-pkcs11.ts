/**
 * The direct PKCS#11 baseline: the same provider work the HSM connector does for one
 * `create AES_256` operation, called straight through pkcs11js on the same SoftHSM2 token with no
 * bus, policy or audit in between. Per key: look for an object with the version's label (the
 * connector's idempotency check), generate a token AES-256 key with the connector's attributes
 * (token, private, sensitive, not extractable, labelled `<keyId>/v1`), and read its attributes back.
 */
import { readFileSync } from 'node:fs';
import pkcs11 from 'pkcs11js';
import type { Handle, Template } from 'pkcs11js';
import type { StackDescriptor } from '@keytower/config';
import { runWithConcurrency, summarizeLatencies, type LatencySummary } from './bench-stats.ts';

/**
 * Sessions the direct loop opens at most: connector-hsm's default session pool size
 * (`KEYTOWER_PKCS11_SESSION_POOL_SIZE`), so both paths have the same number of PKCS#11 calls in flight.
 */
export const DIRECT_LOOP_SESSIONS = 4;

/** Result of one run of the direct loop. */
export interface DirectLoopResult {
  keys: number;
  concurrency: number;
  elapsedMs: number;
  keysPerSecond: number;
  latency: LatencySummary;
  /** Objects on the token before the loop began; SoftHSM2 searches all of them on every find. */
  tokenObjectsBefore: number;
  /** Keys generated and read back; the rate and latencies count only these. */
  succeeded: number;
  /** Failed iterations by PKCS#11 return value name, for example `CKR_GENERAL_ERROR: 1`. */
  failures: Record<string, number>;
}

// Attributes read back after generation, as the connector does to report native state.
const READ_BACK: number[] = [
  pkcs11.CKA_TOKEN,
  pkcs11.CKA_PRIVATE,
  pkcs11.CKA_MODIFIABLE,
  pkcs11.CKA_SENSITIVE,
  pkcs11.CKA_EXTRACTABLE,
  pkcs11.CKA_ALWAYS_SENSITIVE,
  pkcs11.CKA_NEVER_EXTRACTABLE,
  pkcs11.CKA_LOCAL,
  pkcs11.CKA_ENCRYPT,
  pkcs11.CKA_DECRYPT,
  pkcs11.CKA_WRAP,
  pkcs11.CKA_UNWRAP,
  pkcs11.CKA_LABEL,
  pkcs11.CKA_ID,
];

function aesTemplate(label: string): Template {
  return [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
    { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_AES },
    { type: pkcs11.CKA_VALUE_LEN, value: 32 },
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_PRIVATE, value: true },
    { type: pkcs11.CKA_MODIFIABLE, value: true },
    { type: pkcs11.CKA_LABEL, value: label },
    { type: pkcs11.CKA_ID, value: Buffer.from(label, 'utf8') },
    { type: pkcs11.CKA_SENSITIVE, value: true },
    { type: pkcs11.CKA_EXTRACTABLE, value: false },
    { type: pkcs11.CKA_ENCRYPT, value: true },
    { type: pkcs11.CKA_DECRYPT, value: true },
    { type: pkcs11.CKA_WRAP, value: true },
    { type: pkcs11.CKA_UNWRAP, value: true },
  ];
}

function findByLabel(module: pkcs11.PKCS11, session: Handle, label: string): Handle[] {
  module.C_FindObjectsInit(session, [{ type: pkcs11.CKA_LABEL, value: label }]);
  try {
    return module.C_FindObjects(session, 16);
  } finally {
    module.C_FindObjectsFinal(session);
  }
}

function pkcs11ErrorName(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'number') {
    return error instanceof Error ? error.message : String(error);
  }
  const name = Object.entries(pkcs11).find(
    ([key, value]) => key.startsWith('CKR_') && value === code,
  )?.[0];
  return name ?? `CKR 0x${code.toString(16)}`;
}

function countObjects(module: pkcs11.PKCS11, session: Handle): number {
  module.C_FindObjectsInit(session, []);
  try {
    let count = 0;
    for (
      let batch = module.C_FindObjects(session, 1000);
      batch.length > 0;
      batch = module.C_FindObjects(session, 1000)
    ) {
      count += batch.length;
    }
    return count;
  } finally {
    module.C_FindObjectsFinal(session);
  }
}

function findSlot(module: pkcs11.PKCS11, tokenLabel: string): Handle {
  for (const slot of module.C_GetSlotList(true)) {
    // Token labels are padded with spaces to 32 bytes.
    if (module.C_GetTokenInfo(slot).label.trim() === tokenLabel) {
      return slot;
    }
  }
  throw new Error(`PKCS#11 token "${tokenLabel}" not found`);
}

/**
 * Generates `keys` AES-256 token keys with `concurrency` keys in flight on at most
 * {@link DIRECT_LOOP_SESSIONS} sessions, then destroys them (untimed) so the token holds only what
 * keytower made. A failed iteration is counted by its PKCS#11 return value and the loop goes on.
 * The PIN is read from the stack's PIN file and never printed.
 */
export async function runDirectLoop(
  descriptor: StackDescriptor,
  options: { keys: number; concurrency: number; runId: string },
): Promise<DirectLoopResult> {
  // libsofthsm2 reads SOFTHSM2_CONF when it initialises, to find the token folder.
  process.env.SOFTHSM2_CONF = descriptor.hsm.softhsm2Conf;
  const module = new pkcs11.PKCS11();
  module.load(descriptor.hsm.module);
  module.C_Initialize({ flags: pkcs11.CKF_OS_LOCKING_OK });

  const sessions: Handle[] = [];
  const labels: string[] = [];
  try {
    const slot = findSlot(module, descriptor.hsm.tokenLabel);
    const pin = readFileSync(descriptor.hsm.pinFile, 'utf8').trim();
    for (let index = 0; index < Math.min(options.concurrency, DIRECT_LOOP_SESSIONS); index += 1) {
      sessions.push(module.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION));
    }
    // Login belongs to the token, so one C_Login covers every session of this application.
    module.C_Login(sessions[0] as Handle, pkcs11.CKU_USER, pin);
    const tokenObjectsBefore = countObjects(module, sessions[0] as Handle);

    const latencies: number[] = [];
    const failures: Record<string, number> = {};
    const idle = [...sessions];
    const sessionFreed: Array<() => void> = [];
    const takeSession = async (): Promise<Handle> => {
      while (idle.length === 0) {
        await new Promise<void>((resolve) => sessionFreed.push(resolve));
      }
      return idle.pop() as Handle;
    };
    const started = performance.now();
    await runWithConcurrency(options.keys, options.concurrency, async (index) => {
      // Latency counts from here, like the pipeline's, so waiting for a session is part of it.
      const begin = performance.now();
      const session = await takeSession();
      const label = `bench_${options.runId}_${index}/v1`;
      labels.push(label);
      try {
        if (findByLabel(module, session, label).length > 0) {
          throw new Error(`object ${label} already exists on the token`);
        }
        const handle = await module.C_GenerateKeyAsync(
          session,
          { mechanism: pkcs11.CKM_AES_KEY_GEN },
          aesTemplate(label),
        );
        module.C_GetAttributeValue(
          session,
          handle,
          READ_BACK.map((type) => ({ type })),
        );
        latencies.push(performance.now() - begin);
      } catch (error) {
        // A failed call is part of the result, as a failed operation is for the connector.
        const name = pkcs11ErrorName(error);
        failures[name] = (failures[name] ?? 0) + 1;
      } finally {
        idle.push(session);
        sessionFreed.shift()?.();
      }
    });
    const elapsedMs = performance.now() - started;

    return {
      keys: options.keys,
      concurrency: options.concurrency,
      elapsedMs,
      keysPerSecond: (latencies.length * 1000) / elapsedMs,
      latency: summarizeLatencies(latencies),
      tokenObjectsBefore,
      succeeded: latencies.length,
      failures,
    };
  } finally {
    // Found again by label, because a handle returned next to a failed call may no longer be valid.
    const cleanupSession = sessions[0];
    if (cleanupSession !== undefined) {
      for (const label of labels) {
        for (const handle of findByLabel(module, cleanupSession, label)) {
          module.C_DestroyObject(cleanupSession, handle);
        }
      }
    }
    for (const session of sessions) {
      module.C_CloseSession(session);
    }
    module.C_Finalize();
    module.close();
  }
}
