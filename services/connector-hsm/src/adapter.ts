import pkcs11 from 'pkcs11js';
import type { Handle } from 'pkcs11js';
import { CryptoRejectedError, InvalidStateError, KeyNotFoundError } from '@keytower/provider';
import type {
  CreateKeyOptions,
  KeyCallOptions,
  KeyDescription,
  KeyDestroyed,
  KeyProvider,
  NativeResult,
  NativeState,
  RotateKeyOptions,
  ScheduleDestroyOptions,
  VersionCallOptions,
  VersionCreated,
} from '@keytower/provider';

import type { Pkcs11Client } from './client.ts';
import { ckrCode, ckrName, mapPkcs11Error } from './errors.ts';
import { describeObject, findVersionObjects, readObject, scanKeyObjects } from './objects.ts';
import { GenerationLock } from './generation-lock.ts';
import type { VersionObject } from './objects.ts';
import {
  ATTRIBUTE_NAMES,
  USAGE_ATTRIBUTES,
  generationPlan,
  versionLabel,
  versionObjectId,
} from './templates.ts';

/** Options of {@link HsmKeyProvider}. */
export interface HsmKeyProviderOptions {
  client: Pkcs11Client;
}

/** Result of setting one usage attribute on one object. */
interface AttributeChange {
  attribute: string;
  value: boolean;
  /** `CKR_OK`, or the CKR_* name the token returned. */
  result: string;
}

/**
 * {@link KeyProvider} on a PKCS#11 token. PKCS#11 has no key versions, disabled state or pending
 * deletion, so each key version is its own token object labelled `<keyId>/v<version>`, disable
 * clears usage attributes, and the pending window before `destroy` is enforced by policy.
 */
export class HsmKeyProvider implements KeyProvider {
  readonly provider = 'hsm' as const;
  readonly #client: Pkcs11Client;
  readonly #generation = new GenerationLock();

  constructor(options: HsmKeyProviderOptions) {
    this.#client = options.client;
  }

  /** Generates version `options.version`, or returns the object already made for it. */
  async createKey(options: CreateKeyOptions): Promise<VersionCreated> {
    return this.#run('C_GenerateKey', (session) => this.#createVersion(session, options));
  }

  /** Generates version `options.version` of a key that has at least one version on the token. */
  async rotateKey(options: RotateKeyOptions): Promise<VersionCreated> {
    return this.#run('C_GenerateKey', async (session) => {
      const existing = this.#keyObjects(session, options);
      if (existing.length === 0) {
        throw new KeyNotFoundError(
          `cannot rotate key ${options.keyId}: no version of it exists on token "${this.#client.token.label}"`,
          { provider: 'hsm' },
        );
      }
      return this.#createVersion(session, options);
    });
  }

  /** Clears the usage attributes of every object of the version, as far as the token allows. */
  async disableVersion(options: VersionCallOptions): Promise<NativeResult> {
    return this.#run('C_SetAttributeValue', (session) => this.#setUsage(session, options, false));
  }

  /** Restores the usage attributes cleared by {@link disableVersion}. */
  async enableVersion(options: VersionCallOptions): Promise<NativeResult> {
    return this.#run('C_SetAttributeValue', (session) => this.#setUsage(session, options, true));
  }

  /**
   * Checks that the key's objects exist and reports them. The token has no pending state, so
   * the window is recorded by keytower and `destroy` is admitted only after it.
   */
  async scheduleDestroy(options: ScheduleDestroyOptions): Promise<NativeResult> {
    return this.#run('C_FindObjects', (session) => ({
      native: {
        ...this.#presence(session, options),
        pendingWindow: 'enforced-by-keytower',
        pendingWindowSeconds: options.pendingWindowSeconds,
        destroyAfter: options.destroyAfter,
      },
    }));
  }

  /** Checks that the key's objects still exist; cancelling is bookkeeping in keytower. */
  async cancelDestroy(options: KeyCallOptions): Promise<NativeResult> {
    return this.#run('C_FindObjects', (session) => ({
      native: { ...this.#presence(session, options), pendingWindow: 'enforced-by-keytower' },
    }));
  }

  /** Destroys every object of every version of the key; versions already gone count as destroyed. */
  async destroyKey(options: KeyCallOptions): Promise<KeyDestroyed> {
    return this.#run('C_DestroyObject', (session) => {
      const objects = this.#scan(session, options.keyId);
      const destroyed: NativeState[] = [];
      for (const object of objects) {
        const gone = this.#destroyObject(session, object.handle);
        destroyed.push({ ...describeObject(object), version: object.version, result: gone });
      }

      const versionNumbers = new Set<number>([
        ...objects.map((object) => object.version),
        ...options.versions.map((known) => known.version),
      ]);
      const versions = [...versionNumbers]
        .sort((left, right) => left - right)
        .map((version) => ({
          version,
          nativeId: versionObjectId(options.keyId, version).toString('hex'),
          alreadyGone: !objects.some((object) => object.version === version),
        }));

      return { versions, native: { token: this.#tokenState(), objects: destroyed } };
    });
  }

  /** Reports, for each version the inventory records, whether its objects exist and are usable. */
  async describeKey(options: KeyCallOptions): Promise<KeyDescription> {
    return this.#run('C_FindObjects', (session) => {
      const objects = this.#keyObjects(session, options);
      const versions = options.versions.map((known) => {
        const own = objects.filter((object) => object.version === known.version);
        return {
          version: known.version,
          nativeId: known.nativeId,
          present: own.length > 0,
          usable: own.length > 0 && own.every((object) => usageState(object) === true),
        };
      });
      return {
        versions,
        native: {
          token: this.#tokenState(),
          objects: objects.map((object) => ({
            ...describeObject(object),
            version: object.version,
          })),
        },
      };
    });
  }

  async #run<T>(operation: string, work: (session: Handle) => Promise<T> | T): Promise<T> {
    try {
      return await this.#client.pool.use(work);
    } catch (error) {
      throw mapPkcs11Error(error, operation);
    }
  }

  #scan(session: Handle, keyId: string): Array<VersionObject & { version: number }> {
    return scanKeyObjects(this.#client.module, session, keyId);
  }

  /**
   * Returns the objects of the versions the inventory records, found by exact label, or of
   * every version on the token when the inventory records none.
   */
  #keyObjects(
    session: Handle,
    options: KeyCallOptions,
  ): Array<VersionObject & { version: number }> {
    const live = options.versions.filter((known) => known.state !== 'destroyed');
    if (live.length === 0) {
      return this.#scan(session, options.keyId);
    }
    return live.flatMap((known) =>
      findVersionObjects(this.#client.module, session, options.keyId, known.version).map(
        (object) => ({
          ...object,
          version: known.version,
        }),
      ),
    );
  }

  async #createVersion(session: Handle, options: CreateKeyOptions): Promise<VersionCreated> {
    const { keyId, version, algorithm } = options;
    const module = this.#client.module;
    const plan = generationPlan(algorithm, keyId, version);

    const existing = findVersionObjects(module, session, keyId, version);
    if (existing.length > 0) {
      const expected = plan.kind === 'secret' ? ['secret'] : ['private', 'public'];
      const found = existing.map((object) => object.kind).sort();
      if (found.join(',') !== expected.join(',')) {
        // Generation is atomic on SoftHSM2, so a half pair means another writer or a token fault.
        throw new InvalidStateError(
          `key ${keyId} version ${version} exists on token "${this.#client.token.label}" as [${found.join(', ')}], expected [${expected.join(', ')}]; inspect the token before retrying`,
          { provider: 'hsm' },
        );
      }
      return this.#versionCreated(options, existing, plan.mechanismName, true);
    }

    let handles: Handle[];
    try {
      handles = await this.#generation.run(async () => {
        if (plan.kind === 'secret') {
          return [await module.C_GenerateKeyAsync(session, plan.mechanism, plan.template)];
        }
        const pair = await module.C_GenerateKeyPairAsync(
          session,
          plan.mechanism,
          plan.publicTemplate,
          plan.privateTemplate,
        );
        return [pair.privateKey, pair.publicKey];
      });
    } catch (error) {
      throw mapPkcs11Error(error, plan.kind === 'secret' ? 'C_GenerateKey' : 'C_GenerateKeyPair');
    }

    const created = handles
      .map((handle) => readObject(module, session, handle))
      .filter((object): object is VersionObject => object !== undefined);
    return this.#versionCreated(options, created, plan.mechanismName, false);
  }

  #versionCreated(
    options: CreateKeyOptions,
    objects: VersionObject[],
    mechanismName: string,
    alreadyExisted: boolean,
  ): VersionCreated {
    // The CKA_ID read back from the token is the version's native id.
    const nativeVersionId =
      objects[0]?.idHex ?? versionObjectId(options.keyId, options.version).toString('hex');
    return {
      version: options.version,
      nativeVersionId,
      alreadyExisted,
      native: {
        token: this.#tokenState(),
        mechanism: mechanismName,
        label: versionLabel(options.keyId, options.version),
        id: nativeVersionId,
        objects: objects.map(describeObject),
      },
    };
  }

  #setUsage(session: Handle, options: VersionCallOptions, value: boolean): NativeResult {
    const module = this.#client.module;
    const objects = findVersionObjects(module, session, options.keyId, options.version);
    if (objects.length === 0) {
      throw new KeyNotFoundError(
        `no token object for key ${options.keyId} version ${options.version} (label "${versionLabel(options.keyId, options.version)}") on token "${this.#client.token.label}"`,
        { provider: 'hsm' },
      );
    }

    const reports: NativeState[] = [];
    const rejected: AttributeChange[] = [];
    let applied = 0;
    for (const object of objects) {
      const changes = USAGE_ATTRIBUTES[object.kind].map((type) =>
        this.#setAttribute(session, object.handle, type, value),
      );
      applied += changes.filter((change) => change.result === 'CKR_OK').length;
      rejected.push(...changes.filter((change) => change.result !== 'CKR_OK'));

      const after = readObject(module, session, object.handle) ?? object;
      reports.push({ ...describeObject(after), changes: changes.map((change) => ({ ...change })) });
    }

    if (applied === 0) {
      const results = rejected.map((change) => `${change.attribute}: ${change.result}`).join(', ');
      throw new CryptoRejectedError(
        `token "${this.#client.token.label}" rejected every usage attribute change for key ${options.keyId} version ${options.version} (${results})`,
        { provider: 'hsm' },
      );
    }

    return {
      native: {
        token: this.#tokenState(),
        label: versionLabel(options.keyId, options.version),
        usage: value ? 'restored' : 'cleared',
        complete: rejected.length === 0,
        objects: reports,
      },
    };
  }

  /** Sets one attribute, so a token that rejects one change still applies the others. */
  #setAttribute(session: Handle, handle: Handle, type: number, value: boolean): AttributeChange {
    const attribute = ATTRIBUTE_NAMES.get(type) ?? `CKA_0x${type.toString(16)}`;
    try {
      this.#client.module.C_SetAttributeValue(session, handle, [{ type, value }]);
      return { attribute, value, result: 'CKR_OK' };
    } catch (error) {
      const code = ckrCode(error);
      if (
        code === undefined ||
        code === pkcs11.CKR_SESSION_HANDLE_INVALID ||
        code === pkcs11.CKR_SESSION_CLOSED
      ) {
        throw error;
      }
      return { attribute, value, result: ckrName(code) };
    }
  }

  #destroyObject(session: Handle, handle: Handle): 'destroyed' | 'already-gone' {
    try {
      this.#client.module.C_DestroyObject(session, handle);
      return 'destroyed';
    } catch (error) {
      // Another process destroyed it between the search and this call.
      if (ckrCode(error) === pkcs11.CKR_OBJECT_HANDLE_INVALID) {
        return 'already-gone';
      }
      throw error;
    }
  }

  #presence(session: Handle, options: KeyCallOptions): NativeState {
    const objects = this.#keyObjects(session, options);
    if (objects.length === 0) {
      throw new KeyNotFoundError(
        `key ${options.keyId} has no object on token "${this.#client.token.label}"`,
        { provider: 'hsm' },
      );
    }
    const versions = options.versions
      .filter((known) => known.state !== 'destroyed')
      .map((known) => ({
        version: known.version,
        present: objects.some((object) => object.version === known.version),
      }));
    return {
      token: this.#tokenState(),
      versions,
      objects: objects.map((object) => ({ ...describeObject(object), version: object.version })),
    };
  }

  #tokenState(): NativeState {
    const { label, serialNumber, model } = this.#client.token;
    return { label, serialNumber, model };
  }
}

/** Returns true when every usage attribute of the object is set, false when any is cleared. */
function usageState(object: VersionObject): boolean {
  return USAGE_ATTRIBUTES[object.kind].every(
    (type) => object.flags[ATTRIBUTE_NAMES.get(type) ?? ''] === true,
  );
}
