import type { KeyAlgorithm, ProviderName } from '@keytower/contracts';

/** One key type a provider can create for a purpose. */
export interface AlgorithmCapability {
  /** The provider's own name for the key type (`SYMMETRIC_DEFAULT`, `CKK_AES`, `EC-HSM` …). */
  nativeName: string;
  family: 'aes' | 'rsa' | 'ec';
  /** Key sizes in bits for AES and RSA; curve sizes in bits for EC. */
  sizesBits: number[];
  /** Named curves, for EC only. */
  curves?: string[];
  /** The keytower algorithms this key type serves (a subset of the contracts' list). */
  keytowerAlgorithms: KeyAlgorithm[];
}

/**
 * What a provider can do and how, published by each connector to the `kms_capabilities`
 * bucket at start. Policy reads it to reject what a provider cannot do before an operation is
 * sent, instead of failing in the connector.
 */
export interface CapabilityDescriptor {
  provider: ProviderName;
  /** Version of this descriptor's shape, raised on any change that is not additive. */
  schemaVersion: 1;
  purposes: { encrypt: AlgorithmCapability[]; sign: AlgorithmCapability[] };
  rotation: {
    /**
     * `native-versions`: the provider keeps versions of one key; `key-material`: the provider
     * replaces material under the same key id and keeps the old material for decryption only;
     * `new-object-per-version`: keytower makes a separate provider object per version.
     */
    model: 'native-versions' | 'key-material' | 'new-object-per-version';
    /** Whether data protected by an older version can still be decrypted or verified. */
    oldVersionsUsable: boolean;
    /** Whether the provider itself can rotate on a schedule (keytower's scheduler works either way). */
    automaticRotation: boolean;
    /** Purposes whose keys the provider can rotate natively. */
    rotatablePurposes: Array<'encrypt' | 'sign'>;
  };
  disable: {
    /** `version`: each version can be disabled alone; `key`: only the whole key. */
    granularity: 'version' | 'key';
    /** Whether the provider itself refuses cryptographic use of a disabled version. */
    enforcedByProvider: boolean;
  };
  destruction: {
    /** Whether the provider has its own pending state that can be cancelled. */
    nativePendingWindow: boolean;
    /** Smallest pending window the provider accepts, in seconds; null when keytower enforces it. */
    minPendingWindowSeconds: number | null;
    /** Largest pending window the provider accepts, in seconds; null when none is documented. */
    maxPendingWindowSeconds: number | null;
    /** Window the provider applies when none is given, in seconds; null when it has no window. */
    defaultPendingWindowSeconds: number | null;
    /** `key`: the whole key is destroyed; `version`: versions are destroyed one by one. */
    granularity: 'key' | 'version';
  };
  import: {
    supported: boolean;
    /** Provider names of the wrapping algorithms accepted for import. */
    wrappingAlgorithms: string[];
  };
  revocation: {
    /** How keytower revokes a compromised key with this provider. */
    method: 'disable-key' | 'disable-version' | 'clear-usage-attributes';
    description: string;
  };
}

const DAY_SECONDS = 86_400;

// Sources opened for these values: AWS KMS ScheduleKeyDeletion (7–30 days, default 30),
// EnableKeyRotation (symmetric encryption keys only), the CreateKey KeySpec list and the
// GetParametersForImport wrapping algorithms, in the AWS KMS API reference and SDK docs.
/** AWS KMS: one key id, rotation replaces key material, disable and deletion are key-wide. */
export const AWS_CAPABILITIES: CapabilityDescriptor = {
  provider: 'aws',
  schemaVersion: 1,
  purposes: {
    encrypt: [
      {
        nativeName: 'SYMMETRIC_DEFAULT',
        family: 'aes',
        sizesBits: [256],
        keytowerAlgorithms: ['AES_256'],
      },
      { nativeName: 'RSA', family: 'rsa', sizesBits: [2048, 3072, 4096], keytowerAlgorithms: [] },
    ],
    sign: [
      {
        nativeName: 'RSA',
        family: 'rsa',
        sizesBits: [2048, 3072, 4096],
        keytowerAlgorithms: ['RSA_3072'],
      },
      {
        nativeName: 'ECC_NIST',
        family: 'ec',
        sizesBits: [256, 384, 521],
        curves: ['P-256', 'P-384', 'P-521', 'secp256k1'],
        keytowerAlgorithms: ['EC_P256'],
      },
    ],
  },
  rotation: {
    model: 'key-material',
    oldVersionsUsable: true,
    automaticRotation: true,
    rotatablePurposes: ['encrypt'],
  },
  disable: { granularity: 'key', enforcedByProvider: true },
  destruction: {
    nativePendingWindow: true,
    minPendingWindowSeconds: 7 * DAY_SECONDS,
    maxPendingWindowSeconds: 30 * DAY_SECONDS,
    defaultPendingWindowSeconds: 30 * DAY_SECONDS,
    granularity: 'key',
  },
  import: {
    supported: true,
    wrappingAlgorithms: [
      'RSAES_OAEP_SHA_1',
      'RSAES_OAEP_SHA_256',
      'RSA_AES_KEY_WRAP_SHA_1',
      'RSA_AES_KEY_WRAP_SHA_256',
    ],
  },
  revocation: {
    method: 'disable-key',
    description:
      'DisableKey stops every cryptographic use of the key; AWS KMS has no per-version disable.',
  },
};

// Sources opened: Azure Key Vault "About keys" and key types/algorithms pages (RSA 2K/3K/4K,
// EC P-256/P-256K/P-384/P-521, AES only in Managed HSM) and the soft-delete overview
// (retention 7–90 days, default 90), and the BYOK specification.
/** Azure Key Vault: native versions, per-version enable flag, soft delete of the whole key. */
export const AZURE_CAPABILITIES: CapabilityDescriptor = {
  provider: 'azure',
  schemaVersion: 1,
  purposes: {
    encrypt: [
      // NOTE: AES (`oct-HSM`) keys exist only in Managed HSM, not in standard vaults.
      {
        nativeName: 'oct-HSM',
        family: 'aes',
        sizesBits: [128, 256],
        keytowerAlgorithms: ['AES_256'],
      },
      { nativeName: 'RSA', family: 'rsa', sizesBits: [2048, 3072, 4096], keytowerAlgorithms: [] },
    ],
    sign: [
      {
        nativeName: 'RSA',
        family: 'rsa',
        sizesBits: [2048, 3072, 4096],
        keytowerAlgorithms: ['RSA_3072'],
      },
      {
        nativeName: 'EC',
        family: 'ec',
        sizesBits: [256, 384, 521],
        curves: ['P-256', 'P-256K', 'P-384', 'P-521'],
        keytowerAlgorithms: ['EC_P256'],
      },
    ],
  },
  rotation: {
    model: 'native-versions',
    oldVersionsUsable: true,
    automaticRotation: true,
    rotatablePurposes: ['encrypt', 'sign'],
  },
  disable: { granularity: 'version', enforcedByProvider: true },
  destruction: {
    nativePendingWindow: true,
    minPendingWindowSeconds: 7 * DAY_SECONDS,
    maxPendingWindowSeconds: 90 * DAY_SECONDS,
    defaultPendingWindowSeconds: 90 * DAY_SECONDS,
    granularity: 'key',
  },
  // BYOK: the target key arrives wrapped by an RSA-HSM key exchange key created in the vault.
  import: { supported: true, wrappingAlgorithms: ['CKM_RSA_AES_KEY_WRAP'] },
  revocation: {
    method: 'disable-version',
    description: 'Setting enabled=false on a key version makes Key Vault refuse its use.',
  },
};

// Sources opened: Cloud KMS "Destroy and restore key versions" (versions are destroyed one by
// one after a scheduled-for-destruction duration, default 30 days, restorable before), the
// cryptoKeyVersions.destroy reference, the notice that moved the default from 1 to 30 days,
// and the ImportJob.ImportMethod reference.
/** Google Cloud KMS: native versions with their own state, per-version destroy and restore. */
export const GCP_CAPABILITIES: CapabilityDescriptor = {
  provider: 'gcp',
  schemaVersion: 1,
  purposes: {
    encrypt: [
      {
        nativeName: 'GOOGLE_SYMMETRIC_ENCRYPTION',
        family: 'aes',
        sizesBits: [256],
        keytowerAlgorithms: ['AES_256'],
      },
    ],
    sign: [
      {
        nativeName: 'EC_SIGN',
        family: 'ec',
        sizesBits: [256, 384],
        curves: ['P-256', 'P-384', 'secp256k1'],
        keytowerAlgorithms: ['EC_P256'],
      },
      {
        nativeName: 'RSA_SIGN',
        family: 'rsa',
        sizesBits: [2048, 3072, 4096],
        keytowerAlgorithms: ['RSA_3072'],
      },
    ],
  },
  rotation: {
    model: 'native-versions',
    oldVersionsUsable: true,
    automaticRotation: true,
    rotatablePurposes: ['encrypt', 'sign'],
  },
  disable: { granularity: 'version', enforcedByProvider: true },
  destruction: {
    nativePendingWindow: true,
    // The pre-2024 default of one day is the smallest duration the docs opened here mention.
    minPendingWindowSeconds: DAY_SECONDS,
    // NOTE: the upper bound of destroyScheduledDuration was not found in the docs opened.
    maxPendingWindowSeconds: null,
    defaultPendingWindowSeconds: 30 * DAY_SECONDS,
    granularity: 'version',
  },
  import: {
    supported: true,
    wrappingAlgorithms: [
      'RSA_OAEP_3072_SHA1_AES_256',
      'RSA_OAEP_4096_SHA1_AES_256',
      'RSA_OAEP_3072_SHA256_AES_256',
      'RSA_OAEP_4096_SHA256_AES_256',
      'RSA_OAEP_3072_SHA256',
    ],
  },
  revocation: {
    method: 'disable-version',
    description: 'Setting a CryptoKeyVersion to DISABLED makes Cloud KMS refuse its use.',
  },
};

// Sources opened: OCI KeyShape (AES 16/24/32 bytes, RSA 256/384/512 bytes, ECDSA 32/48/66 bytes
// on NIST P-256/P-384/P-521), ScheduleKeyDeletionDetails (7–30 days, default 30) and
// WrappedImportKey's wrapping algorithms.
/** OCI Vault: native key versions, key-wide disable, scheduled deletion of the key. */
export const OCI_CAPABILITIES: CapabilityDescriptor = {
  provider: 'oci',
  schemaVersion: 1,
  purposes: {
    encrypt: [
      {
        nativeName: 'AES',
        family: 'aes',
        sizesBits: [128, 192, 256],
        keytowerAlgorithms: ['AES_256'],
      },
    ],
    sign: [
      {
        nativeName: 'RSA',
        family: 'rsa',
        sizesBits: [2048, 3072, 4096],
        keytowerAlgorithms: ['RSA_3072'],
      },
      {
        nativeName: 'ECDSA',
        family: 'ec',
        sizesBits: [256, 384, 521],
        curves: ['NIST_P256', 'NIST_P384', 'NIST_P521'],
        keytowerAlgorithms: ['EC_P256'],
      },
    ],
  },
  rotation: {
    model: 'native-versions',
    oldVersionsUsable: true,
    // NOTE: not checked against OCI docs; keytower's scheduler rotates OCI keys itself.
    automaticRotation: false,
    rotatablePurposes: ['encrypt', 'sign'],
  },
  disable: { granularity: 'key', enforcedByProvider: true },
  destruction: {
    nativePendingWindow: true,
    minPendingWindowSeconds: 7 * DAY_SECONDS,
    maxPendingWindowSeconds: 30 * DAY_SECONDS,
    defaultPendingWindowSeconds: 30 * DAY_SECONDS,
    granularity: 'key',
  },
  import: { supported: true, wrappingAlgorithms: ['RSA_OAEP_SHA256', 'RSA_OAEP_AES_SHA256'] },
  revocation: {
    method: 'disable-key',
    description:
      'DisableKey makes OCI Vault refuse every use of the key; versions cannot be disabled alone.',
  },
};

/**
 * PKCS#11 v2.40 token (SoftHSM2 by default). PKCS#11 has no versions, no disabled state and no
 * pending deletion, so keytower supplies them: each version is its own token object, disable
 * clears usage attributes, and the pending window is enforced by policy before `destroy`.
 */
export const HSM_CAPABILITIES: CapabilityDescriptor = {
  provider: 'hsm',
  schemaVersion: 1,
  purposes: {
    encrypt: [
      { nativeName: 'CKK_AES', family: 'aes', sizesBits: [256], keytowerAlgorithms: ['AES_256'] },
    ],
    sign: [
      {
        nativeName: 'CKK_EC',
        family: 'ec',
        sizesBits: [256],
        curves: ['P-256'],
        keytowerAlgorithms: ['EC_P256'],
      },
      { nativeName: 'CKK_RSA', family: 'rsa', sizesBits: [3072], keytowerAlgorithms: ['RSA_3072'] },
    ],
  },
  rotation: {
    model: 'new-object-per-version',
    oldVersionsUsable: true,
    automaticRotation: false,
    rotatablePurposes: ['encrypt', 'sign'],
  },
  // Enforcement depends on the token honouring cleared CKA_ENCRYPT/CKA_SIGN attributes.
  disable: { granularity: 'version', enforcedByProvider: true },
  destruction: {
    nativePendingWindow: false,
    minPendingWindowSeconds: null,
    maxPendingWindowSeconds: null,
    defaultPendingWindowSeconds: null,
    granularity: 'key',
  },
  // NOTE: PKCS#11 can import through C_UnwrapKey, but the HSM connector implements no import yet.
  import: { supported: false, wrappingAlgorithms: [] },
  revocation: {
    method: 'clear-usage-attributes',
    description:
      'Clears CKA_ENCRYPT/CKA_DECRYPT/CKA_WRAP/CKA_UNWRAP or CKA_SIGN/CKA_VERIFY on every version object.',
  },
};

/** The descriptor of each provider keytower names, keyed by provider. */
export const CAPABILITIES: Readonly<Record<ProviderName, CapabilityDescriptor>> = {
  hsm: HSM_CAPABILITIES,
  aws: AWS_CAPABILITIES,
  azure: AZURE_CAPABILITIES,
  gcp: GCP_CAPABILITIES,
  oci: OCI_CAPABILITIES,
};

/** Returns whether `descriptor` lists `algorithm` for `purpose`. */
export function supportsAlgorithm(
  descriptor: CapabilityDescriptor,
  purpose: 'encrypt' | 'sign',
  algorithm: KeyAlgorithm,
): boolean {
  return descriptor.purposes[purpose].some((entry) => entry.keytowerAlgorithms.includes(algorithm));
}
