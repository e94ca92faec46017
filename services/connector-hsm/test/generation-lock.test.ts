import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

import { GenerationLock } from '../src/generation-lock.ts';

describe('GenerationLock', () => {
  it('never overlaps two generations', async () => {
    const lock = new GenerationLock();
    let running = 0;
    let maxRunning = 0;
    const order: number[] = [];

    await Promise.all(
      [1, 2, 3, 4, 5].map((index) =>
        lock.run(async () => {
          running += 1;
          maxRunning = Math.max(maxRunning, running);
          await sleep(5);
          order.push(index);
          running -= 1;
        }),
      ),
    );

    assert.equal(maxRunning, 1);
    assert.deepEqual(order, [1, 2, 3, 4, 5]);
  });

  it('releases after a failed generation', async () => {
    const lock = new GenerationLock();

    await assert.rejects(
      lock.run(async () => {
        throw new Error('CKR_GENERAL_ERROR');
      }),
      /CKR_GENERAL_ERROR/,
    );
    const result = await lock.run(async () => 'next');

    assert.equal(result, 'next');
  });
});
