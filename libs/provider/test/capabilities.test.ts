import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  CAPABILITIES,
  HSM_CAPABILITIES,
  canImportKeys,
  canTagKeys,
  supportsAlgorithm,
} from '../src/index.ts';
import type { KeyProvider } from '../src/index.ts';

const PROVIDERS = ['hsm', 'aws', 'azure', 'gcp', 'oci'] as const;

describe('capability descriptors', () => {
  it('exist for every provider under its own name', () => {
    for (const provider of PROVIDERS) {
      assert.equal(CAPABILITIES[provider].provider, provider);
    }
  });

  it('serve every keytower algorithm somewhere', () => {
    for (const provider of PROVIDERS) {
      const descriptor = CAPABILITIES[provider];

      assert.equal(supportsAlgorithm(descriptor, 'encrypt', 'AES_256'), true, provider);
      assert.equal(supportsAlgorithm(descriptor, 'sign', 'EC_P256'), true, provider);
      assert.equal(supportsAlgorithm(descriptor, 'sign', 'RSA_3072'), true, provider);
      assert.equal(supportsAlgorithm(descriptor, 'encrypt', 'EC_P256'), false, provider);
    }
  });

  it('keep pending window bounds ordered', () => {
    for (const provider of PROVIDERS) {
      const { minPendingWindowSeconds, maxPendingWindowSeconds, defaultPendingWindowSeconds } =
        CAPABILITIES[provider].destruction;

      if (minPendingWindowSeconds !== null && defaultPendingWindowSeconds !== null) {
        assert.ok(minPendingWindowSeconds <= defaultPendingWindowSeconds, provider);
      }
      if (maxPendingWindowSeconds !== null && defaultPendingWindowSeconds !== null) {
        assert.ok(defaultPendingWindowSeconds <= maxPendingWindowSeconds, provider);
      }
    }
  });

  it('describe the HSM without native pending state', () => {
    assert.equal(HSM_CAPABILITIES.destruction.nativePendingWindow, false);
    assert.equal(HSM_CAPABILITIES.rotation.model, 'new-object-per-version');
    assert.equal(HSM_CAPABILITIES.import.supported, false);
  });

  it('survive a JSON round trip unchanged', () => {
    for (const provider of PROVIDERS) {
      assert.deepEqual(JSON.parse(JSON.stringify(CAPABILITIES[provider])), CAPABILITIES[provider]);
    }
  });
});

describe('optional ability guards', () => {
  const base = { provider: 'hsm' } as unknown as KeyProvider;

  it('detect importKey and tagKey methods', () => {
    const importer = Object.assign(Object.create(null), base, {
      importKey: async () => ({}),
    }) as KeyProvider;
    const tagger = Object.assign(Object.create(null), base, {
      tagKey: async () => ({}),
    }) as KeyProvider;

    assert.equal(canImportKeys(importer), true);
    assert.equal(canTagKeys(importer), false);
    assert.equal(canTagKeys(tagger), true);
    assert.equal(canImportKeys(base), false);
  });
});
