import type { Command } from 'commander';
import { DeliverPolicy } from '@nats-io/jetstream';
import { messageTypes, STREAMS } from '@keytower/contracts';
import type { Bus } from '@keytower/bus';
import { parseCount } from './inputs.ts';
import { type GlobalOptions, withBus } from './session.ts';

/** The audit record fields `audit tail` prints. */
interface AuditRecordSummary {
  sequence: number;
  time: string;
  message: { type: string | null; actor: string | null; id: string | null };
  keyId: string | null;
  /** The source message; for `command.rejected`, its data carries the rejection code. */
  envelope?: { data?: { code?: unknown } } | null;
  hash: string;
}

const HASH_PREFIX_LENGTH = 16;
const DEFAULT_COUNT = '10';

interface TailOptions {
  fromStart?: boolean;
  n: string;
  follow: boolean;
}

/** `keytower audit tail`: prints audit records from `KMS_AUDIT` and follows new ones. */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('read the tamper-evident audit trail');

  audit
    .command('tail')
    .description(
      'print the last audit records (sequence, time, type, key, actor, hash prefix), then follow new ones',
    )
    .option('--from-start', 'start at the first record instead of the last -n')
    .option('-n <count>', 'how many of the latest records to print first', DEFAULT_COUNT)
    .option('--no-follow', 'exit after printing the records that exist now')
    .action(async (options: TailOptions, command: Command) => {
      const count = parseCount(options.n);
      const globals = command.optsWithGlobals<GlobalOptions>();
      await withBus(globals, 'cli', (bus) =>
        tailAudit(bus, {
          fromStart: options.fromStart === true,
          count,
          follow: options.follow,
          json: globals.json === true,
        }),
      );
    });
}

async function tailAudit(
  bus: Bus,
  options: { fromStart: boolean; count: number; follow: boolean; json: boolean },
): Promise<void> {
  const info = await bus.manager.streams.info(STREAMS.audit);
  const lastSequence = info.state.last_seq;
  const firstSequence = info.state.first_seq;
  if (!options.follow && info.state.messages === 0) {
    return;
  }
  const start = options.fromStart
    ? firstSequence
    : Math.max(firstSequence, lastSequence - options.count + 1);

  const consumer = await bus.jetstream.consumers.get(STREAMS.audit, {
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Math.max(1, start),
  });
  const messages = await consumer.consume();
  const stop = () => messages.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    for await (const message of messages) {
      printRecord(message.json<AuditRecordSummary>(), options.json);
      if (!options.follow && message.seq >= lastSequence) {
        break;
      }
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    messages.stop();
  }
}

function printRecord(record: AuditRecordSummary, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(record)}\n`);
    return;
  }
  const fields = [
    String(record.sequence).padStart(6),
    record.time,
    record.message?.type ?? '-',
    record.keyId ?? '-',
    record.message?.actor ?? '-',
    (record.hash ?? '').slice(0, HASH_PREFIX_LENGTH),
  ];
  const rejectionCode = record.envelope?.data?.code;
  if (record.message?.type === messageTypes.commandRejected && typeof rejectionCode === 'string') {
    fields.push(`rejected: ${rejectionCode}`);
  }
  process.stdout.write(`${fields.join('  ')}\n`);
}
