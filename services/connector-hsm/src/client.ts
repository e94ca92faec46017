import pkcs11 from 'pkcs11js';
import type { Handle } from 'pkcs11js';
import type { Logger } from '@keytower/telemetry';
import { UnavailableError } from '@keytower/provider';

import { ckrCode, mapPkcs11Error } from './errors.ts';
import { SessionPool } from './session-pool.ts';
import type { Pkcs11Module } from './session-pool.ts';

/** Identity of the token the client works on, reported in native state. */
export interface TokenIdentity {
  label: string;
  serialNumber: string;
  manufacturerId: string;
  model: string;
}

/** Options of {@link openPkcs11Client}. */
export interface Pkcs11ClientOptions {
  /** Path of the PKCS#11 v2.40 module, for example `/usr/lib/softhsm/libsofthsm2.so`. */
  modulePath: string;
  /** Token label to look for. The slot id is never stored: SoftHSM2 moves an initialised token to a slot derived from its serial. */
  tokenLabel: string;
  /** User PIN; never logged. */
  pin: string;
  /** Number of long-lived sessions; default 4. */
  poolSize?: number;
  logger: Logger;
  /**
   * Wraps the loaded module before the client uses it, for example to record calls in a test.
   * The wrapper must forward every call to the module it receives.
   */
  wrapModule?: (module: Pkcs11Module) => Pkcs11Module;
}

/** An initialised PKCS#11 module, one token found by label, and a pool of logged-in sessions. */
export interface Pkcs11Client {
  readonly module: Pkcs11Module;
  readonly token: TokenIdentity;
  readonly pool: SessionPool;
  /** Returns the pool's sessions, logs out, closes them and finalizes the module if no other client in this process uses it. */
  close(): Promise<void>;
}

interface LoadedModule {
  module: pkcs11.PKCS11;
  users: number;
}

// PKCS#11 allows one C_Initialize per process and one C_Finalize ends the library for every
// caller, so clients of the same module path share one loaded module and the last one to
// close finalizes it.
const loadedModules = new Map<string, LoadedModule>();

function acquireModule(modulePath: string): pkcs11.PKCS11 {
  const loaded = loadedModules.get(modulePath);
  if (loaded !== undefined) {
    loaded.users += 1;
    return loaded.module;
  }

  const module = new pkcs11.PKCS11();
  try {
    module.load(modulePath);
  } catch (error) {
    throw new UnavailableError(
      `cannot load PKCS#11 module ${modulePath}: ${(error as Error).message}`,
      {
        provider: 'hsm',
        cause: error,
      },
    );
  }
  try {
    module.C_Initialize({ flags: pkcs11.CKF_OS_LOCKING_OK });
  } catch (error) {
    // Another loader in this process (for example a test inspecting the token) initialised it.
    if (ckrCode(error) !== pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      module.close();
      throw mapPkcs11Error(error, 'C_Initialize');
    }
  }
  loadedModules.set(modulePath, { module, users: 1 });
  return module;
}

function releaseModule(modulePath: string, logger: Logger): void {
  const loaded = loadedModules.get(modulePath);
  if (loaded === undefined) {
    return;
  }
  loaded.users -= 1;
  if (loaded.users > 0) {
    return;
  }

  loadedModules.delete(modulePath);
  try {
    loaded.module.C_Finalize();
  } catch (error) {
    logger.warn({ err: mapPkcs11Error(error, 'C_Finalize') }, 'pkcs11 finalize failed');
  }
  loaded.module.close();
}

function findSlotByLabel(
  module: Pkcs11Module,
  tokenLabel: string,
): { slot: Handle; token: TokenIdentity } {
  let slots: Handle[];
  try {
    slots = module.C_GetSlotList(true);
  } catch (error) {
    throw mapPkcs11Error(error, 'C_GetSlotList');
  }

  const seen: string[] = [];
  for (const slot of slots) {
    const info = module.C_GetTokenInfo(slot);
    const label = info.label.trimEnd();
    seen.push(label);
    if (label === tokenLabel) {
      return {
        slot,
        token: {
          label,
          serialNumber: info.serialNumber.trim(),
          manufacturerId: info.manufacturerID.trim(),
          model: info.model.trim(),
        },
      };
    }
  }

  const found =
    seen.length === 0
      ? 'no token is present'
      : `tokens present: ${seen.map((label) => `"${label}"`).join(', ')}`;
  throw new UnavailableError(
    `PKCS#11 token with label "${tokenLabel}" not found (${found}); check KEYTOWER_PKCS11_TOKEN_LABEL and SOFTHSM2_CONF`,
    { provider: 'hsm' },
  );
}

/**
 * Loads and initialises the module (once per process, with OS locking), finds the token by
 * label and opens a pool of logged-in sessions.
 */
export function openPkcs11Client(options: Pkcs11ClientOptions): Pkcs11Client {
  const poolSize = options.poolSize ?? 4;
  const loaded = acquireModule(options.modulePath);
  const module = options.wrapModule === undefined ? loaded : options.wrapModule(loaded);

  try {
    const { slot, token } = findSlotByLabel(module, options.tokenLabel);
    const pool = new SessionPool({
      module,
      slot,
      pin: options.pin,
      size: poolSize,
      logger: options.logger,
    });
    pool.open();
    options.logger.info(
      { tokenLabel: token.label, tokenSerial: token.serialNumber, poolSize },
      'pkcs11 token opened',
    );

    return {
      module,
      token,
      pool,
      close: async () => {
        await pool.close();
        releaseModule(options.modulePath, options.logger);
      },
    };
  } catch (error) {
    releaseModule(options.modulePath, options.logger);
    throw error;
  }
}
