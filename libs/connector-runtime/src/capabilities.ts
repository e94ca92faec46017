import { BUCKETS } from '@keytower/contracts';
import type { Bus } from '@keytower/bus';
import type { CapabilityDescriptor } from '@keytower/provider';

/**
 * Writes a connector's capability descriptor to the `kms_capabilities` bucket under its
 * provider name, and returns the KV revision. Policy reads it before admitting operations.
 */
export async function publishCapabilities(
  bus: Bus,
  descriptor: CapabilityDescriptor,
): Promise<number> {
  const bucket = await bus.kv(BUCKETS.capabilities);
  return bucket.put(
    descriptor.provider,
    JSON.stringify({ ...descriptor, publishedAt: new Date().toISOString() }),
  );
}
