/**
 * A consumer replica run as a child process, so tests can SIGKILL it mid-handler. It reads
 * its settings as JSON from argv[2] and writes one JSON line per event to stdout:
 * `ready`, `start` and `done` with the message id, delivery count and process id.
 */
import { connectBus, RetryableError } from '../../src/index.ts';
import type { BusMessage } from '../../src/index.ts';
import { memoryLogger, sleep } from './helpers.ts';

export interface ChildSettings {
  url: string;
  user: string;
  password: string;
  stream: string;
  durable: string;
  /** `slow`: every handler takes `handlerMs`. `hang-on-last`: retry until the last delivery, then hang. */
  mode: 'slow' | 'hang-on-last';
  handlerMs: number;
}

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ...event, pid: process.pid, at: Date.now() })}\n`);
}

const settings = JSON.parse(process.argv[2] ?? '{}') as ChildSettings;
const { logger } = memoryLogger('bus-test-child');
const bus = await connectBus({
  servers: settings.url,
  user: settings.user,
  password: settings.password,
  name: `bus-test-child-${process.pid}`,
  logger,
});

async function handler(message: BusMessage): Promise<void> {
  const id = message.json<{ id: string }>().id;
  emit({
    event: 'start',
    id,
    deliveryCount: message.deliveryCount,
    isLastAttempt: message.isLastAttempt,
  });
  if (settings.mode === 'hang-on-last') {
    if (!message.isLastAttempt) {
      throw new RetryableError('simulated failure', { retryAfterMs: 50 });
    }
    await new Promise(() => {
      // Never settles: the parent kills this process during the last delivery.
    });
  }
  await sleep(settings.handlerMs);
  emit({ event: 'done', id, deliveryCount: message.deliveryCount });
}

await bus.consume({ stream: settings.stream, durable: settings.durable, handler });
emit({ event: 'ready' });
