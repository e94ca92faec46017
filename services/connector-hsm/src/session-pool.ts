import pkcs11 from 'pkcs11js';
import type { Handle, PKCS11 } from 'pkcs11js';
import type { Logger } from '@keytower/telemetry';

import { ckrCode, ckrName, mapPkcs11Error } from './errors.ts';

/**
 * The PKCS#11 calls keytower makes, as a narrow structural type. pkcs11js's `PKCS11` satisfies
 * it, and a test can wrap the real module to record calls without replacing the token.
 */
export type Pkcs11Module = Pick<
  PKCS11,
  | 'C_Initialize'
  | 'C_Finalize'
  | 'C_GetSlotList'
  | 'C_GetTokenInfo'
  | 'C_OpenSession'
  | 'C_CloseSession'
  | 'C_Login'
  | 'C_Logout'
  | 'C_FindObjectsInit'
  | 'C_FindObjects'
  | 'C_FindObjectsFinal'
  | 'C_GetAttributeValue'
  | 'C_SetAttributeValue'
  | 'C_DestroyObject'
  | 'C_GenerateKeyAsync'
  | 'C_GenerateKeyPairAsync'
  | 'C_SignInit'
  | 'C_SignAsync'
>;

/** Options of {@link SessionPool}. */
export interface SessionPoolOptions {
  module: Pkcs11Module;
  slot: Handle;
  /** User PIN; kept in a private field and never logged. */
  pin: string;
  size: number;
  logger: Logger;
}

/** Result of a `C_Login` call: a fresh login, or a token that was already logged in. */
export type LoginOutcome = 'logged-in' | 'already-logged-in';

const SESSION_LOST_CODES = new Set([pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED]);

/**
 * A fixed number of long-lived read/write sessions on one token, each lent to one operation at
 * a time. Login belongs to the token, not the session, so every new session calls `C_Login`
 * and treats `CKR_USER_ALREADY_LOGGED_IN` as success. `C_Logout` logs out every session of
 * the token, so it is called only by {@link close}, after every session has been returned.
 */
export class SessionPool {
  readonly #module: Pkcs11Module;
  readonly #slot: Handle;
  readonly #pin: string;
  readonly #size: number;
  readonly #logger: Logger;
  readonly #idle: Handle[] = [];
  readonly #waiters: Array<(session: Handle) => void> = [];
  readonly #open = new Set<Handle>();
  #lent = 0;
  #closing = false;
  #drained: (() => void) | undefined;

  constructor(options: SessionPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) {
      throw new RangeError(
        `session pool size must be a positive integer, received ${options.size}`,
      );
    }
    this.#module = options.module;
    this.#slot = options.slot;
    this.#pin = options.pin;
    this.#size = options.size;
    this.#logger = options.logger;
  }

  /** Opens every session and logs the token in. Call once, before {@link use}. */
  open(): void {
    try {
      for (let index = 0; index < this.#size; index += 1) {
        this.#idle.push(this.#openSession());
      }
    } catch (error) {
      for (const session of this.#open) {
        this.#closeQuietly(session);
      }
      this.#open.clear();
      this.#idle.length = 0;
      throw error;
    }
  }

  /** Number of sessions the pool keeps open. */
  get size(): number {
    return this.#size;
  }

  /** Handles of the sessions open now, for diagnostics and tests. */
  sessionHandles(): Handle[] {
    return [...this.#open];
  }

  /**
   * Runs `work` on a session that no other operation uses meanwhile. When the token reports
   * that the session is gone (`CKR_SESSION_HANDLE_INVALID`, `CKR_SESSION_CLOSED`), the pool
   * replaces it and runs `work` once more on the new session; on `CKR_USER_NOT_LOGGED_IN` it
   * logs in again and retries once. Other errors are thrown unchanged for the caller to map.
   */
  async use<T>(work: (session: Handle) => Promise<T> | T): Promise<T> {
    let session = await this.#acquire();
    try {
      try {
        return await work(session);
      } catch (error) {
        const code = ckrCode(error);
        if (code !== undefined && SESSION_LOST_CODES.has(code)) {
          this.#logger.warn({ result: ckrName(code) }, 'pkcs11 session replaced');
          session = this.#replace(session);
          return await work(session);
        }
        if (code === pkcs11.CKR_USER_NOT_LOGGED_IN) {
          this.#logger.warn({ result: ckrName(code) }, 'pkcs11 token logged in again');
          this.login(session);
          return await work(session);
        }
        throw error;
      }
    } finally {
      this.#release(session);
    }
  }

  /**
   * Logs the user in through `session`. `CKR_USER_ALREADY_LOGGED_IN` means another session of
   * this application already logged the token in, which is the state we want.
   */
  login(session: Handle): LoginOutcome {
    try {
      this.#module.C_Login(session, pkcs11.CKU_USER, this.#pin);
      return 'logged-in';
    } catch (error) {
      if (ckrCode(error) === pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
        return 'already-logged-in';
      }
      throw mapPkcs11Error(error, 'C_Login');
    }
  }

  /**
   * Waits for every lent session to come back, logs the token out once and closes every
   * session. Operations that call {@link use} after this start fail.
   */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.#lent > 0) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
      });
    }

    const [first] = this.#open;
    if (first !== undefined) {
      try {
        this.#module.C_Logout(first);
      } catch (error) {
        // CKR_USER_NOT_LOGGED_IN at shutdown leaves the token in the state we wanted.
        if (ckrCode(error) !== pkcs11.CKR_USER_NOT_LOGGED_IN) {
          this.#logger.warn({ err: mapPkcs11Error(error, 'C_Logout') }, 'pkcs11 logout failed');
        }
      }
    }
    for (const session of this.#open) {
      this.#closeQuietly(session);
    }
    this.#open.clear();
    this.#idle.length = 0;
  }

  #openSession(): Handle {
    let session: Handle;
    try {
      session = this.#module.C_OpenSession(
        this.#slot,
        pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION,
      );
    } catch (error) {
      throw mapPkcs11Error(error, 'C_OpenSession');
    }
    this.#open.add(session);

    try {
      const outcome = this.login(session);
      this.#logger.debug({ outcome }, 'pkcs11 session opened');
    } catch (error) {
      this.#open.delete(session);
      this.#closeQuietly(session);
      throw error;
    }
    return session;
  }

  #replace(lost: Handle): Handle {
    this.#open.delete(lost);
    this.#closeQuietly(lost);
    return this.#openSession();
  }

  #closeQuietly(session: Handle): void {
    try {
      this.#module.C_CloseSession(session);
    } catch (error) {
      // Closing a session the token already dropped returns CKR_SESSION_HANDLE_INVALID, so nothing is left to close.
      if (!SESSION_LOST_CODES.has(ckrCode(error) ?? -1)) {
        this.#logger.warn(
          { err: mapPkcs11Error(error, 'C_CloseSession') },
          'pkcs11 session close failed',
        );
      }
    }
  }

  async #acquire(): Promise<Handle> {
    if (this.#closing) {
      throw new Error('session pool is closed: no new PKCS#11 operation may start');
    }
    const session = this.#idle.pop();
    this.#lent += 1;
    if (session !== undefined) {
      return session;
    }
    return new Promise<Handle>((resolve) => {
      this.#waiters.push(resolve);
    });
  }

  #release(session: Handle): void {
    // Every acquire counted itself in #lent, including the waiter that receives this session.
    this.#lent -= 1;

    // Operations queued before close() still run, so a waiting one gets the session first.
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      waiter(session);
      return;
    }

    this.#idle.push(session);
    if (this.#closing && this.#lent === 0) {
      this.#drained?.();
    }
  }
}
