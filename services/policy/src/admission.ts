import type { ProviderName } from '@keytower/contracts';
import type { KV } from '@nats-io/kv';
import type { CapabilityDescriptor } from '@keytower/provider';
import type { Logger } from '@keytower/telemetry';
import type { AllowList } from './authorize.ts';
import { readCapabilities } from './capabilities.ts';
import { type Decision, type DecisionSettings, type KeyCommand, decide } from './decide.ts';
import { readEntry, writeEntry } from './inventory.ts';
import { isRevisionConflict } from './revision.ts';

/**
 * Admission: the decision applied to the key's inventory entry by compare-and-set. Two
 * policy replicas deciding commands for the same key at once both read the same revision, and
 * only one write succeeds. The other re-reads and decides again, so it reads the pending
 * operation and rejects its command as `operation-in-progress`, or folds a rotate into the
 * rotation in flight.
 */

export interface AdmissionContext {
  inventory: KV;
  /** The `kms_capabilities` bucket, read before a create or import is decided. */
  capabilities: KV;
  allowList: AllowList;
  settings: DecisionSettings;
  clock: () => Date;
  logger: Logger;
}

const MAX_ATTEMPTS = 20;

/**
 * Decides a command against the current inventory entry and, when admitted or joined to a
 * rotation in flight, stores the changed pending operation in the entry. Returns the decision that took effect.
 */
export async function admitCommand(
  context: AdmissionContext,
  command: KeyCommand,
): Promise<Decision> {
  const capabilities = await readProviderCapabilities(context, command);
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt += 1) {
    const stored = await readEntry(context.inventory, command.keyId);
    const decision = decide({
      command,
      entry: stored?.entry ?? null,
      allowList: context.allowList,
      settings: context.settings,
      now: context.clock(),
      ...(capabilities === undefined ? {} : { capabilities }),
    });
    if (decision.outcome !== 'admit' && decision.outcome !== 'join') {
      return decision;
    }

    try {
      await writeEntry(context.inventory, decision.entry, stored?.revision ?? null);
      return decision;
    } catch (error) {
      if (!isRevisionConflict(error)) {
        throw error;
      }
      context.logger.debug(
        { commandId: command.id, keyId: command.keyId, attempt },
        'inventory entry changed during admission; deciding again',
      );
    }
  }
  throw new Error(
    `could not admit command ${command.id}: the inventory entry of key ${command.keyId} changed on each of ${MAX_ATTEMPTS} attempts`,
  );
}

/** Reads the descriptor of the provider a create or import names; undefined for other commands. */
async function readProviderCapabilities(
  context: AdmissionContext,
  command: KeyCommand,
): Promise<CapabilityDescriptor | null | undefined> {
  if (command.action !== 'create' && command.action !== 'import') {
    return undefined;
  }
  return await readCapabilities(context.capabilities, command.data.provider as ProviderName);
}
