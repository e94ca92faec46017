import { setTimeout as sleep } from 'node:timers/promises';

import type { Logger } from '@keytower/telemetry';

/** Bounds of one batch and the retry policy for failed inserts. */
export interface BatcherOptions<T> {
  /** Stores one batch; must resolve only once the store confirmed it. */
  insert: (items: T[]) => Promise<void>;
  /** A batch is flushed when it reaches this many items ... */
  maxItems: number;
  /** ... or when its first item has waited this long, in milliseconds. */
  maxWaitMs: number;
  /** First delay after a failed insert, doubled after each failure up to `retryMaxDelayMs`. */
  retryInitialDelayMs: number;
  retryMaxDelayMs: number;
  logger: Logger;
}

interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (error: Error) => void;
}

/**
 * Groups items into batches bounded by size and age, inserts one batch at a time, and
 * settles each item's promise only when its batch was confirmed.
 *
 * A failed insert is retried with capped exponential backoff for as long as it takes: the
 * items stay unconfirmed (so their messages are never acked) and nothing is dropped.
 * Only {@link InsertBatcher.close} ends the retries, rejecting the unconfirmed items so
 * their messages are redelivered later.
 */
export class InsertBatcher<T> {
  readonly #options: BatcherOptions<T>;
  #pending: Pending<T>[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  readonly #closing = new AbortController();

  constructor(options: BatcherOptions<T>) {
    if (!Number.isInteger(options.maxItems) || options.maxItems < 1) {
      throw new RangeError(`maxItems must be a positive integer, received ${options.maxItems}`);
    }
    this.#options = options;
  }

  /** Adds an item; resolves once the batch containing it was inserted. */
  add(item: T): Promise<void> {
    if (this.#closing.signal.aborted) {
      return Promise.reject(new Error('batch insert rejected: the batcher is closed'));
    }

    const settled = new Promise<void>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
    });
    if (this.#pending.length >= this.#options.maxItems) {
      this.#scheduleFlush();
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#scheduleFlush(), this.#options.maxWaitMs);
    }
    return settled;
  }

  /** Flushes what is pending, stops retrying, and rejects items whose insert did not succeed. */
  async close(): Promise<void> {
    this.#scheduleFlush();
    this.#closing.abort();
    await this.#flushing;
  }

  #scheduleFlush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#pending.splice(0, this.#options.maxItems);
    if (batch.length === 0) {
      return;
    }
    // Batches are inserted one after another, so records reach the store in stream order.
    this.#flushing = this.#flushing.then(() => this.#insertUntilConfirmed(batch));
    if (this.#pending.length >= this.#options.maxItems) {
      this.#scheduleFlush();
    } else if (this.#pending.length > 0) {
      this.#timer = setTimeout(() => this.#scheduleFlush(), this.#options.maxWaitMs);
    }
  }

  async #insertUntilConfirmed(batch: Pending<T>[]): Promise<void> {
    const { logger } = this.#options;
    let delayMs = this.#options.retryInitialDelayMs;

    for (let attempt = 1; ; attempt += 1) {
      try {
        const started = Date.now();
        await this.#options.insert(batch.map((entry) => entry.item));
        if (attempt > 1) {
          logger.info({ size: batch.length, attempt }, 'batch insert succeeded after retries');
        }
        logger.debug({ size: batch.length, durationMs: Date.now() - started }, 'batch inserted');
        for (const entry of batch) {
          entry.resolve();
        }
        return;
      } catch (error) {
        if (this.#closing.signal.aborted) {
          logger.warn(
            { err: error, size: batch.length, attempt },
            'batch insert failed while closing; messages will be redelivered',
          );
          const reason = new Error('batch insert failed while the sink was stopping', {
            cause: error,
          });
          for (const entry of batch) {
            entry.reject(reason);
          }
          return;
        }
        logger.warn(
          { err: error, size: batch.length, attempt, delayMs },
          'batch insert failed; retrying',
        );
        await sleep(jitter(delayMs), undefined, { signal: this.#closing.signal }).catch(
          () => undefined,
        );
        delayMs = Math.min(delayMs * 2, this.#options.retryMaxDelayMs);
      }
    }
  }
}

// Between half and all of the delay, so several sinks recovering together do not retry in step.
function jitter(delayMs: number): number {
  return delayMs / 2 + Math.random() * (delayMs / 2);
}
