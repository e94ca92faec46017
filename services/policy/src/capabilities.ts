import { PROVIDERS, type ProviderName } from '@keytower/contracts';
import type { CapabilityDescriptor } from '@keytower/provider';
import type { KV } from '@nats-io/kv';

/**
 * Reads of `kms_capabilities`, where each connector stores its capability descriptor under its
 * provider name when it starts. Policy reads the bucket on every create and import, without a
 * cache, so a connector that registers is admitted from its next command on.
 */

/**
 * Reads the descriptor stored for `provider`. Returns null when no connector for it has
 * registered, and throws when the stored value is not a descriptor of that provider, so a
 * corrupt entry is retried and surfaced instead of read as "no connector".
 */
export async function readCapabilities(
  kv: KV,
  provider: ProviderName,
): Promise<CapabilityDescriptor | null> {
  const stored = await kv.get(provider);
  if (stored === null || stored.operation !== 'PUT') {
    return null;
  }
  const value: unknown = stored.json();
  const problem = describeProblem(value, provider);
  if (problem !== null) {
    throw new Error(
      `kms_capabilities entry "${provider}" (revision ${stored.revision}) is not a capability descriptor: ${problem}`,
    );
  }
  return value as CapabilityDescriptor;
}

/** Checks the fields policy reads; returns what is wrong, or null. */
function describeProblem(value: unknown, provider: ProviderName): string | null {
  if (value === null || typeof value !== 'object') {
    return 'expected an object';
  }
  const descriptor = value as Record<string, unknown>;
  if (descriptor.provider !== provider || !PROVIDERS.includes(provider)) {
    return `provider: expected "${provider}", received ${JSON.stringify(descriptor.provider)}`;
  }
  const purposes = descriptor.purposes as Record<string, unknown> | undefined;
  if (
    purposes === undefined ||
    purposes === null ||
    !Array.isArray(purposes.encrypt) ||
    !Array.isArray(purposes.sign)
  ) {
    return 'purposes: expected lists of key types for encrypt and sign';
  }
  const keyTypes = [...purposes.encrypt, ...purposes.sign] as unknown[];
  if (
    !keyTypes.every(
      (keyType) =>
        keyType !== null &&
        typeof keyType === 'object' &&
        Array.isArray((keyType as { keytowerAlgorithms?: unknown }).keytowerAlgorithms),
    )
  ) {
    return 'purposes: expected each key type to list its keytowerAlgorithms';
  }
  const imports = descriptor.import as Record<string, unknown> | undefined;
  if (imports === undefined || imports === null || typeof imports.supported !== 'boolean') {
    return 'import.supported: expected a boolean';
  }
  return null;
}
