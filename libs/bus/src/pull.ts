import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@keytower/telemetry';

export interface PullLoopOptions {
  consumer: Consumer;
  /** Maximum messages handled at once; the loop pulls only as many as there are free slots. */
  concurrency: number;
  /** Handles one message; it must settle it (ack, nak or term) itself. */
  dispatch(message: JsMsg): Promise<void>;
  logger: Logger;
  /** How long one pull request waits for messages, in milliseconds. */
  expiresMs: number;
}

export interface PullLoop {
  /** Stops pulling, then naks any message that arrives after the stop. */
  stop(): Promise<void>;
  /** Promises of the handlers still running. */
  inFlight(): Promise<void>[];
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/**
 * Pulls from a durable consumer only while a handler slot is free. Messages are never
 * buffered ahead of a handler, because a buffered message's ack wait would run out while it
 * waits and another replica would receive it too.
 */
export function startPullLoop(options: PullLoopOptions): PullLoop {
  const { consumer, concurrency, logger } = options;
  const stopping = new AbortController();
  const running = new Set<Promise<void>>();
  let slotFreed: (() => void) | undefined;
  let batch: ConsumerMessages | undefined;

  function whenSlotFree(): Promise<void> {
    if (running.size < concurrency) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      slotFreed = resolve;
    });
  }

  function track(message: JsMsg): void {
    const handled = options.dispatch(message).catch((error: unknown) => {
      logger.error({ err: error }, 'message dispatch failed');
    });
    running.add(handled);
    void handled.finally(() => {
      running.delete(handled);
      const resolve = slotFreed;
      slotFreed = undefined;
      resolve?.();
    });
  }

  async function loop(): Promise<void> {
    let failures = 0;
    while (!stopping.signal.aborted) {
      await Promise.race([whenSlotFree(), sleep(60_000, stopping.signal)]);
      if (stopping.signal.aborted) {
        break;
      }
      const free = concurrency - running.size;
      if (free <= 0) {
        continue;
      }

      try {
        batch = await consumer.fetch({ max_messages: free, expires: options.expiresMs });
        for await (const message of batch) {
          if (stopping.signal.aborted) {
            message.nak();
            continue;
          }
          track(message);
        }
        failures = 0;
      } catch (error) {
        if (stopping.signal.aborted) {
          break;
        }
        failures += 1;
        const delay = Math.min(5_000, 250 * 2 ** Math.min(failures, 5));
        logger.warn({ err: error, retryInMs: delay }, 'pull request failed; retrying');
        await sleep(delay, stopping.signal);
      } finally {
        batch = undefined;
      }
    }
  }

  const loopDone = loop();
  return {
    async stop() {
      stopping.abort();
      const resolve = slotFreed;
      slotFreed = undefined;
      resolve?.();
      batch?.stop();
      await loopDone;
    },
    inFlight: () => [...running],
  };
}
