import type { KeyAlgorithm, KeyPurpose, ProviderName } from '@keytower/contracts';

/**
 * JSON value a provider reports as its native state. It is copied into outcome events and the
 * audit trail, so it must never contain key material, PINs or credentials.
 */
export type NativeValue =
  string | number | boolean | null | NativeValue[] | { [field: string]: NativeValue };

/** The provider's own description of what a call did or found, as plain JSON. */
export type NativeState = { [field: string]: NativeValue };

/** A key version as keytower's inventory records it. */
export interface KnownVersion {
  version: number;
  /** Provider identifier of the version, as returned by the call that created it. */
  nativeId: string;
  state: 'enabled' | 'disabled' | 'destroyed';
}

/** Fields every lifecycle call receives: which key, what it is, and what the inventory records. */
export interface KeyCallOptions {
  /** keytower key id (`kt_…`). */
  keyId: string;
  purpose: KeyPurpose;
  algorithm: KeyAlgorithm;
  label: string;
  tags: Record<string, string>;
  /** Versions the inventory holds for the key, with their native ids. Empty before creation. */
  versions: KnownVersion[];
  /** Aborted when the connector shuts down; adapters pass it to SDK calls that accept one. */
  signal?: AbortSignal;
}

/** Options of {@link KeyProvider.createKey}. */
export interface CreateKeyOptions extends KeyCallOptions {
  /** Version number that policy chose at admission (1 for a new key). */
  version: number;
}

/** Options of {@link KeyProvider.rotateKey}. */
export interface RotateKeyOptions extends KeyCallOptions {
  /** Number of the version to create, chosen by policy at admission. */
  version: number;
}

/** Options of {@link KeyProvider.disableVersion} and {@link KeyProvider.enableVersion}. */
export interface VersionCallOptions extends KeyCallOptions {
  version: number;
}

/** Options of {@link KeyProvider.scheduleDestroy}. */
export interface ScheduleDestroyOptions extends KeyCallOptions {
  pendingWindowSeconds: number;
  /** The instant after which policy admits `destroy`, computed at admission. */
  destroyAfter: string;
}

/** Result of a call that made a key version. */
export interface VersionCreated {
  version: number;
  /** Provider identifier of the new version, taken from the provider's own response. */
  nativeVersionId: string;
  /** Whether the object already existed for this key id and version (a redelivered call). */
  alreadyExisted: boolean;
  native: NativeState;
}

/** Result of a call that changed or checked state without making a version. */
export interface NativeResult {
  native: NativeState;
}

/** Result of {@link KeyProvider.destroyKey}. */
export interface KeyDestroyed {
  /** Every version the call found and removed, or found already gone. */
  versions: Array<{ version: number; nativeId: string; alreadyGone: boolean }>;
  native: NativeState;
}

/** Result of {@link KeyProvider.describeKey}. */
export interface KeyDescription {
  versions: Array<{ version: number; nativeId: string; present: boolean; usable: boolean }>;
  native: NativeState;
}

/**
 * One provider's key lifecycle. The connector runtime calls exactly one method per operation
 * that policy admitted, so the methods check no policy: the version number, pending window and
 * order of calls were decided before the call.
 *
 * Contract for every method:
 * - Idempotent for a given key id and version: operations are delivered at least once, so a
 *   repeated call finds the work already done (for example the version object already made)
 *   and returns the same native ids instead of doing it again.
 * - Returns the native state produced by the call itself (ids from the provider's response),
 *   never from a later look-up that could observe another writer's change.
 * - Raises only {@link ProviderError} subclasses; native errors are mapped at the adapter.
 * - Returns no key material.
 */
export interface KeyProvider {
  readonly provider: ProviderName;

  /** Creates the key and its first version (`options.version`, normally 1). */
  createKey(options: CreateKeyOptions): Promise<VersionCreated>;

  /**
   * Creates version `options.version` of an existing key. Which version is primary is recorded
   * by keytower's inventory; providers without versions keep every version usable.
   */
  rotateKey(options: RotateKeyOptions): Promise<VersionCreated>;

  /** Stops one version from being used, as far as the provider allows; `native` reports how far. */
  disableVersion(options: VersionCallOptions): Promise<NativeResult>;

  /** Undoes {@link disableVersion} for one version. */
  enableVersion(options: VersionCallOptions): Promise<NativeResult>;

  /** Starts the pending window before destruction (natively where the provider has one). */
  scheduleDestroy(options: ScheduleDestroyOptions): Promise<NativeResult>;

  /** Ends a pending window started by {@link scheduleDestroy}. */
  cancelDestroy(options: KeyCallOptions): Promise<NativeResult>;

  /** Removes every version of the key. A key already gone counts as destroyed. */
  destroyKey(options: KeyCallOptions): Promise<KeyDestroyed>;

  /** Reads the provider's current view of the key without changing it. */
  describeKey(options: KeyCallOptions): Promise<KeyDescription>;
}

/** Options of {@link KeyImporter.importKey}. */
export interface ImportKeyOptions extends KeyCallOptions {
  version: number;
  /** Key material wrapped for this provider's import key; the adapter never logs it. */
  wrappedKeyMaterial: Uint8Array;
  /** The provider's import token or wrapping key reference the material was wrapped for. */
  importToken: string;
}

/** Optional ability: import externally generated key material as a new version. */
export interface KeyImporter {
  importKey(options: ImportKeyOptions): Promise<VersionCreated>;
}

/** Optional ability: replace the provider-side tags of a key with `options.tags`. */
export interface KeyTagger {
  tagKey(options: KeyCallOptions): Promise<NativeResult>;
}

/** Returns whether `provider` also implements {@link KeyImporter}. */
export function canImportKeys<P extends KeyProvider>(provider: P): provider is P & KeyImporter {
  return typeof (provider as Partial<KeyImporter>).importKey === 'function';
}

/** Returns whether `provider` also implements {@link KeyTagger}. */
export function canTagKeys<P extends KeyProvider>(provider: P): provider is P & KeyTagger {
  return typeof (provider as Partial<KeyTagger>).tagKey === 'function';
}
