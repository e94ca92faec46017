import { DEFAULT_PENDING_WINDOW_SECONDS } from '@keytower/contracts';
import type { KeyEventName, OperationData } from '@keytower/contracts';
import {
  InvalidStateError,
  NotSupportedError,
  canImportKeys,
  canTagKeys,
} from '@keytower/provider';
import type { KeyCallOptions, KeyProvider, NativeState } from '@keytower/provider';

/** Result of one provider call: the event to publish and its data beyond the common fields. */
export interface Outcome {
  event: KeyEventName;
  /** Event fields besides keyId, commandId, operationId, provider, sequence and native. */
  fields: Record<string, unknown>;
  native: NativeState;
  /** Whether the provider found the work already done (a redelivered create or rotate). */
  alreadyDone: boolean;
}

function requireVersion(operation: OperationData): number {
  if (operation.version === undefined) {
    // Policy chooses the version at admission; an operation without it is a policy bug.
    throw new InvalidStateError(
      `operation ${operation.operationId} (${operation.action}) carries no version number`,
      {
        provider: operation.provider,
      },
    );
  }
  return operation.version;
}

function pendingWindowSeconds(operation: OperationData): number {
  const value = operation.params.pendingWindowSeconds;
  return typeof value === 'number' ? value : DEFAULT_PENDING_WINDOW_SECONDS;
}

/**
 * Calls the adapter method for the operation's action and returns the outcome event it
 * produces. Adapters are idempotent per key id and version, so a redelivered operation
 * produces the same outcome.
 */
export async function performOperation(
  provider: KeyProvider,
  operation: OperationData,
  signal: AbortSignal,
): Promise<Outcome> {
  const base: KeyCallOptions = {
    keyId: operation.keyId,
    purpose: operation.key.purpose,
    algorithm: operation.key.algorithm,
    label: operation.key.label,
    tags: operation.key.tags,
    versions: operation.versions,
    signal,
  };

  switch (operation.action) {
    case 'create': {
      const version = operation.version ?? 1;
      const result = await provider.createKey({ ...base, version });
      return {
        event: 'created',
        fields: {
          purpose: operation.key.purpose,
          algorithm: operation.key.algorithm,
          label: operation.key.label,
          tags: operation.key.tags,
          version,
          nativeVersionId: result.nativeVersionId,
          primaryVersion: version,
        },
        native: result.native,
        alreadyDone: result.alreadyExisted,
      };
    }
    case 'rotate': {
      const version = requireVersion(operation);
      const result = await provider.rotateKey({ ...base, version });
      return {
        event: 'version-created',
        fields: { version, nativeVersionId: result.nativeVersionId, primaryVersion: version },
        native: result.native,
        alreadyDone: result.alreadyExisted,
      };
    }
    case 'disable':
    case 'enable': {
      const version = requireVersion(operation);
      const call =
        operation.action === 'disable' ? provider.disableVersion : provider.enableVersion;
      const result = await call.call(provider, { ...base, version });
      return {
        event: operation.action === 'disable' ? 'disabled' : 'enabled',
        fields: { version },
        native: result.native,
        alreadyDone: false,
      };
    }
    case 'schedule-destroy': {
      if (operation.destroyAfter === undefined) {
        throw new InvalidStateError(
          `operation ${operation.operationId} (schedule-destroy) carries no destroyAfter`,
          {
            provider: operation.provider,
          },
        );
      }
      const result = await provider.scheduleDestroy({
        ...base,
        pendingWindowSeconds: pendingWindowSeconds(operation),
        destroyAfter: operation.destroyAfter,
      });
      return {
        event: 'destroy-scheduled',
        fields: { destroyAfter: operation.destroyAfter },
        native: result.native,
        alreadyDone: false,
      };
    }
    case 'cancel-destroy': {
      const result = await provider.cancelDestroy(base);
      return { event: 'destroy-cancelled', fields: {}, native: result.native, alreadyDone: false };
    }
    case 'destroy': {
      const result = await provider.destroyKey(base);
      return {
        event: 'destroyed',
        fields: { versions: result.versions.map((entry) => entry.version) },
        native: result.native,
        alreadyDone:
          result.versions.length > 0 && result.versions.every((entry) => entry.alreadyGone),
      };
    }
    case 'import': {
      if (!canImportKeys(provider)) {
        throw new NotSupportedError(`provider ${provider.provider} does not import keys`, {
          provider: provider.provider,
        });
      }
      const version = operation.version ?? 1;
      const material = operation.params.wrappedKeyMaterial;
      const importToken = operation.params.importToken;
      if (typeof material !== 'string' || typeof importToken !== 'string') {
        throw new InvalidStateError(
          `operation ${operation.operationId} (import) lacks wrappedKeyMaterial or importToken`,
          {
            provider: operation.provider,
          },
        );
      }
      const result = await provider.importKey({
        ...base,
        version,
        wrappedKeyMaterial: Buffer.from(material, 'base64'),
        importToken,
      });
      return {
        event: 'imported',
        fields: {
          purpose: operation.key.purpose,
          algorithm: operation.key.algorithm,
          label: operation.key.label,
          tags: operation.key.tags,
          version,
          nativeVersionId: result.nativeVersionId,
          primaryVersion: version,
        },
        native: result.native,
        alreadyDone: result.alreadyExisted,
      };
    }
    case 'tag': {
      if (!canTagKeys(provider)) {
        throw new NotSupportedError(`provider ${provider.provider} does not tag keys`, {
          provider: provider.provider,
        });
      }
      const tags = (operation.params.tags ?? operation.key.tags) as Record<string, string>;
      const result = await provider.tagKey({ ...base, tags });
      return { event: 'tagged', fields: { tags }, native: result.native, alreadyDone: false };
    }
  }
}
