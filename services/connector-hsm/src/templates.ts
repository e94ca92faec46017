import pkcs11 from 'pkcs11js';
import type { Mechanism, Template } from 'pkcs11js';
import type { KeyAlgorithm } from '@keytower/contracts';

/** DER encoding of the OID of NIST P-256 (prime256v1, 1.2.840.10045.3.1.7), the value of CKA_EC_PARAMS. */
const P256_EC_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');

/** Public exponent 65537 for RSA key generation. */
const RSA_PUBLIC_EXPONENT = Buffer.from([0x01, 0x00, 0x01]);

/** Object classes a keytower key version consists of on the token. */
export type ObjectKind = 'secret' | 'private' | 'public';

/** Returns the CKA_LABEL of a key version: `<keyId>/v<version>`. */
export function versionLabel(keyId: string, version: number): string {
  return `${keyId}/v${version}`;
}

/** Returns the CKA_ID of a key version: the UTF-8 bytes of its label, so both identify the same version. */
export function versionObjectId(keyId: string, version: number): Buffer {
  return Buffer.from(versionLabel(keyId, version), 'utf8');
}

/** Parses a label made by {@link versionLabel}; returns undefined for any other label. */
export function parseVersionLabel(label: string): { keyId: string; version: number } | undefined {
  const match = /^([A-Za-z0-9_-]{1,64})\/v([1-9][0-9]{0,8})$/.exec(label);
  if (match === null) {
    return undefined;
  }
  return { keyId: match[1] as string, version: Number(match[2]) };
}

/** Usage attributes that disable clears and enable restores, per object kind. */
export const USAGE_ATTRIBUTES: Readonly<Record<ObjectKind, readonly number[]>> = {
  secret: [pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT, pkcs11.CKA_WRAP, pkcs11.CKA_UNWRAP],
  private: [pkcs11.CKA_SIGN],
  public: [pkcs11.CKA_VERIFY],
};

/** Names of the CKA_* attributes this connector reads or writes, for native state. */
export const ATTRIBUTE_NAMES: ReadonlyMap<number, string> = new Map([
  [pkcs11.CKA_CLASS, 'CKA_CLASS'],
  [pkcs11.CKA_KEY_TYPE, 'CKA_KEY_TYPE'],
  [pkcs11.CKA_LABEL, 'CKA_LABEL'],
  [pkcs11.CKA_ID, 'CKA_ID'],
  [pkcs11.CKA_TOKEN, 'CKA_TOKEN'],
  [pkcs11.CKA_PRIVATE, 'CKA_PRIVATE'],
  [pkcs11.CKA_MODIFIABLE, 'CKA_MODIFIABLE'],
  [pkcs11.CKA_SENSITIVE, 'CKA_SENSITIVE'],
  [pkcs11.CKA_EXTRACTABLE, 'CKA_EXTRACTABLE'],
  [pkcs11.CKA_ALWAYS_SENSITIVE, 'CKA_ALWAYS_SENSITIVE'],
  [pkcs11.CKA_NEVER_EXTRACTABLE, 'CKA_NEVER_EXTRACTABLE'],
  [pkcs11.CKA_LOCAL, 'CKA_LOCAL'],
  [pkcs11.CKA_ENCRYPT, 'CKA_ENCRYPT'],
  [pkcs11.CKA_DECRYPT, 'CKA_DECRYPT'],
  [pkcs11.CKA_WRAP, 'CKA_WRAP'],
  [pkcs11.CKA_UNWRAP, 'CKA_UNWRAP'],
  [pkcs11.CKA_SIGN, 'CKA_SIGN'],
  [pkcs11.CKA_VERIFY, 'CKA_VERIFY'],
]);

/** Boolean attributes read back from each object kind to report its protection and usage. */
export const REPORTED_FLAGS: Readonly<Record<ObjectKind, readonly number[]>> = {
  secret: [
    pkcs11.CKA_TOKEN,
    pkcs11.CKA_PRIVATE,
    pkcs11.CKA_MODIFIABLE,
    pkcs11.CKA_SENSITIVE,
    pkcs11.CKA_EXTRACTABLE,
    pkcs11.CKA_ALWAYS_SENSITIVE,
    pkcs11.CKA_NEVER_EXTRACTABLE,
    pkcs11.CKA_LOCAL,
    ...USAGE_ATTRIBUTES.secret,
  ],
  private: [
    pkcs11.CKA_TOKEN,
    pkcs11.CKA_PRIVATE,
    pkcs11.CKA_MODIFIABLE,
    pkcs11.CKA_SENSITIVE,
    pkcs11.CKA_EXTRACTABLE,
    pkcs11.CKA_ALWAYS_SENSITIVE,
    pkcs11.CKA_NEVER_EXTRACTABLE,
    pkcs11.CKA_LOCAL,
    ...USAGE_ATTRIBUTES.private,
  ],
  public: [
    pkcs11.CKA_TOKEN,
    pkcs11.CKA_PRIVATE,
    pkcs11.CKA_MODIFIABLE,
    pkcs11.CKA_LOCAL,
    ...USAGE_ATTRIBUTES.public,
  ],
};

/** Returns the object kind of a CKA_CLASS value, or undefined for classes keytower never makes. */
export function objectKind(objectClass: number): ObjectKind | undefined {
  if (objectClass === pkcs11.CKO_SECRET_KEY) {
    return 'secret';
  }
  if (objectClass === pkcs11.CKO_PRIVATE_KEY) {
    return 'private';
  }
  if (objectClass === pkcs11.CKO_PUBLIC_KEY) {
    return 'public';
  }
  return undefined;
}

/** Generation request for one key version: a secret key, or a key pair. */
export type GenerationPlan =
  | { kind: 'secret'; mechanism: Mechanism; mechanismName: string; template: Template }
  | {
      kind: 'pair';
      mechanism: Mechanism;
      mechanismName: string;
      publicTemplate: Template;
      privateTemplate: Template;
    };

/**
 * Returns the mechanism and templates that generate one key version. Every object is a token
 * object (it survives C_Finalize) and private; secret and private keys are sensitive and not
 * extractable. CKA_LABEL and CKA_ID carry the key id and version number, so a redelivered
 * operation finds the object it already made.
 */
export function generationPlan(
  algorithm: KeyAlgorithm,
  keyId: string,
  version: number,
): GenerationPlan {
  const identity: Template = [
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_PRIVATE, value: true },
    { type: pkcs11.CKA_MODIFIABLE, value: true },
    { type: pkcs11.CKA_LABEL, value: versionLabel(keyId, version) },
    { type: pkcs11.CKA_ID, value: versionObjectId(keyId, version) },
  ];
  const protectedKey: Template = [
    { type: pkcs11.CKA_SENSITIVE, value: true },
    { type: pkcs11.CKA_EXTRACTABLE, value: false },
  ];

  switch (algorithm) {
    case 'AES_256':
      return {
        kind: 'secret',
        mechanism: { mechanism: pkcs11.CKM_AES_KEY_GEN },
        mechanismName: 'CKM_AES_KEY_GEN',
        template: [
          { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
          { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_AES },
          { type: pkcs11.CKA_VALUE_LEN, value: 32 },
          ...identity,
          ...protectedKey,
          { type: pkcs11.CKA_ENCRYPT, value: true },
          { type: pkcs11.CKA_DECRYPT, value: true },
          { type: pkcs11.CKA_WRAP, value: true },
          { type: pkcs11.CKA_UNWRAP, value: true },
        ],
      };
    case 'EC_P256':
      return {
        kind: 'pair',
        mechanism: { mechanism: pkcs11.CKM_EC_KEY_PAIR_GEN },
        mechanismName: 'CKM_EC_KEY_PAIR_GEN',
        publicTemplate: [
          { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PUBLIC_KEY },
          { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_EC },
          { type: pkcs11.CKA_EC_PARAMS, value: P256_EC_PARAMS },
          ...identity,
          { type: pkcs11.CKA_VERIFY, value: true },
        ],
        privateTemplate: [
          { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PRIVATE_KEY },
          { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_EC },
          ...identity,
          ...protectedKey,
          { type: pkcs11.CKA_SIGN, value: true },
        ],
      };
    case 'RSA_3072':
      return {
        kind: 'pair',
        mechanism: { mechanism: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN },
        mechanismName: 'CKM_RSA_PKCS_KEY_PAIR_GEN',
        publicTemplate: [
          { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PUBLIC_KEY },
          { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_RSA },
          { type: pkcs11.CKA_MODULUS_BITS, value: 3072 },
          { type: pkcs11.CKA_PUBLIC_EXPONENT, value: RSA_PUBLIC_EXPONENT },
          ...identity,
          { type: pkcs11.CKA_VERIFY, value: true },
        ],
        privateTemplate: [
          { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PRIVATE_KEY },
          { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_RSA },
          ...identity,
          ...protectedKey,
          { type: pkcs11.CKA_SIGN, value: true },
        ],
      };
  }
}
