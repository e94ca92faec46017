/**
 * The keytower path under load: `create AES_256` commands on the HSM provider, published as a
 * client does (the `cli` NATS user, a new command id each), timed from the publish until the
 * command's `kms_commands` entry turns terminal. That covers policy's decision and admission,
 * connector-hsm's PKCS#11 work, the outcome event and policy's projection of it into the inventory
 * and the command status.
 */
import { KvWatchInclude } from '@nats-io/kv';
import type { Bus } from '@keytower/bus';
import {
  BUCKETS,
  buildEnvelope,
  commandStatusEntrySchema,
  deriveKeyId,
  isTerminalStatus,
  messageTypes,
  newCommandId,
  subjects,
  type CommandStatusEntry,
} from '@keytower/contracts';
import { runWithConcurrency, summarizeLatencies, type LatencySummary } from './bench-stats.ts';

/** Result of one run of the pipeline loop. */
export interface PipelineLoopResult {
  commands: number;
  concurrency: number;
  succeeded: number;
  /** Commands that ended other than `succeeded`, by status (for example `rejected: 2`). */
  unsuccessful: Record<string, number>;
  elapsedMs: number;
  commandsPerSecond: number;
  latency: LatencySummary;
  keyIds: string[];
}

/** The identity the benchmark's commands are sent as; policy's allow-list must grant it `create`. */
export const BENCH_ACTOR = 'user:bench';
const BENCH_SOURCE = 'keytower/bench';

/**
 * Sends `commands` create commands with at most `concurrency` waiting for their outcome at once.
 * One watch on the whole `kms_commands` bucket, started before the first publish, receives every
 * terminal status, so the timing includes no per-command watch set-up. A command with no terminal
 * status after `commandTimeoutMs` fails the run.
 */
export async function runPipelineLoop(
  bus: Bus,
  options: { commands: number; concurrency: number; runId: string; commandTimeoutMs: number },
): Promise<PipelineLoopResult> {
  const statuses = await bus.kv(BUCKETS.commands);
  const waiters = new Map<string, (entry: CommandStatusEntry) => void>();
  const watch = await statuses.watch({ key: '>', include: KvWatchInclude.UpdatesOnly });
  const watching = (async () => {
    for await (const entry of watch) {
      if (entry.operation !== 'PUT') {
        continue;
      }
      const parsed = commandStatusEntrySchema.safeParse(entry.json());
      if (parsed.success && isTerminalStatus(parsed.data.status)) {
        waiters.get(parsed.data.commandId)?.(parsed.data);
      }
    }
  })();

  const latencies: number[] = [];
  const unsuccessful: Record<string, number> = {};
  const keyIds: string[] = [];
  let succeeded = 0;

  const started = performance.now();
  try {
    await runWithConcurrency(options.commands, options.concurrency, async (index) => {
      const commandId = newCommandId();
      const keyId = deriveKeyId(commandId);
      keyIds.push(keyId);
      const envelope = buildEnvelope({
        id: commandId,
        type: messageTypes.command('create'),
        subject: keyId,
        data: {
          provider: 'hsm',
          purpose: 'encrypt',
          algorithm: 'AES_256',
          label: `bench-${options.runId}-${index}`,
        },
        actor: BENCH_ACTOR,
        source: BENCH_SOURCE,
      });

      let timer: NodeJS.Timeout | undefined;
      const outcome = new Promise<CommandStatusEntry>((resolve, reject) => {
        waiters.set(commandId, resolve);
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `command ${commandId} (create ${keyId}) has no terminal status after ${options.commandTimeoutMs} ms`,
              ),
            ),
          options.commandTimeoutMs,
        );
      });

      // Handled where it is awaited; this only keeps an early timeout from counting as unhandled.
      outcome.catch(() => undefined);

      const begin = performance.now();
      try {
        const ack = await bus.publish(subjects.command('create', keyId), envelope);
        if (ack.duplicate) {
          throw new Error(`command ${commandId} was reported as a duplicate publish`);
        }
        const status = await outcome;
        latencies.push(performance.now() - begin);
        if (status.status === 'succeeded') {
          succeeded += 1;
        } else {
          const label = `${status.status}${status.reason === undefined ? '' : ` (${status.reason.code})`}`;
          unsuccessful[label] = (unsuccessful[label] ?? 0) + 1;
        }
      } finally {
        clearTimeout(timer);
        waiters.delete(commandId);
      }
    });
  } finally {
    watch.stop();
    await watching;
  }
  const elapsedMs = performance.now() - started;

  return {
    commands: options.commands,
    concurrency: options.concurrency,
    succeeded,
    unsuccessful,
    elapsedMs,
    commandsPerSecond: (options.commands * 1000) / elapsedMs,
    latency: summarizeLatencies(latencies),
    keyIds,
  };
}
