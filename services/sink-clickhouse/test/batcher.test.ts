import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createLogger } from '@keytower/telemetry';

import { InsertBatcher } from '../src/batcher.ts';

const logger = createLogger({ service: 'batcher-test', level: 'silent' });

function recordingBatcher(options: { maxItems: number; maxWaitMs: number; failures?: number }) {
  const batches: number[][] = [];
  let failuresLeft = options.failures ?? 0;
  const batcher = new InsertBatcher<number>({
    insert: async (items) => {
      if (failuresLeft > 0) {
        failuresLeft -= 1;
        throw new Error('store unavailable');
      }
      batches.push(items);
    },
    maxItems: options.maxItems,
    maxWaitMs: options.maxWaitMs,
    retryInitialDelayMs: 10,
    retryMaxDelayMs: 40,
    logger,
  });
  return { batcher, batches };
}

describe('InsertBatcher', () => {
  test('flushes a full batch at once', async () => {
    const { batcher, batches } = recordingBatcher({ maxItems: 3, maxWaitMs: 60_000 });
    await Promise.all([1, 2, 3, 4, 5, 6].map((item) => batcher.add(item)));
    assert.deepEqual(batches, [
      [1, 2, 3],
      [4, 5, 6],
    ]);
    await batcher.close();
  });

  test('flushes a partial batch after the wait', async () => {
    const { batcher, batches } = recordingBatcher({ maxItems: 100, maxWaitMs: 50 });
    const started = Date.now();
    await Promise.all([batcher.add(1), batcher.add(2)]);
    assert.deepEqual(batches, [[1, 2]]);
    assert.ok(Date.now() - started >= 45, 'waited for the batch to fill');
    await batcher.close();
  });

  test('retries a failed insert until confirmed', async () => {
    const { batcher, batches } = recordingBatcher({ maxItems: 2, maxWaitMs: 10, failures: 3 });
    await Promise.all([batcher.add(1), batcher.add(2), batcher.add(3)]);
    assert.deepEqual(batches, [[1, 2], [3]], 'batches kept their order across retries');
    await batcher.close();
  });

  test('rejects unconfirmed items on close', async () => {
    const { batcher, batches } = recordingBatcher({ maxItems: 10, maxWaitMs: 10, failures: 1_000 });
    const pending = batcher.add(1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await batcher.close();
    await assert.rejects(pending, /while the sink was stopping/);
    assert.deepEqual(batches, []);
    await assert.rejects(batcher.add(2), /batcher is closed/);
  });

  test('rejects an invalid batch size', () => {
    assert.throws(() => recordingBatcher({ maxItems: 0, maxWaitMs: 10 }), /positive integer/);
  });
});
