import { type InventoryEntry, inventoryEntrySchema } from '@keytower/contracts';
import type { KV } from '@nats-io/kv';

/** Reads and writes of `kms_inventory`, one entry per key id, always with its KV revision. */

export interface StoredEntry {
  entry: InventoryEntry;
  revision: number;
}

/** Reads a key's entry; null when the key has none (never created, or deleted). */
export async function readEntry(kv: KV, keyId: string): Promise<StoredEntry | null> {
  const stored = await kv.get(keyId);
  if (stored === null || stored.operation !== 'PUT') {
    return null;
  }
  return { entry: inventoryEntrySchema.parse(stored.json()), revision: stored.revision };
}

/**
 * Writes an entry by compare-and-set: `create` when `revision` is null, else `update` against
 * that revision. Throws the KV error on a conflict; see `isRevisionConflict`.
 */
export async function writeEntry(
  kv: KV,
  entry: InventoryEntry,
  revision: number | null,
): Promise<number> {
  const value = JSON.stringify(inventoryEntrySchema.parse(entry));
  if (revision === null) {
    return kv.create(entry.keyId, value);
  }
  return kv.update(entry.keyId, value, revision);
}

/** Deletes an entry by compare-and-set on its revision. */
export async function deleteEntry(kv: KV, keyId: string, revision: number): Promise<void> {
  await kv.delete(keyId, { previousSeq: revision });
}
