import { userInfo } from 'node:os';
import { type Command, Option } from 'commander';
import {
  BUCKETS,
  type InventoryEntry,
  inventoryEntrySchema,
  type KeyAction,
} from '@keytower/contracts';
import { CliError, EXIT_CODES, UsageError } from './errors.ts';
import {
  parseActor,
  parseAlgorithm,
  parseKeyId,
  parseLabel,
  parsePendingWindow,
  parseProvider,
  parsePurpose,
  parseTags,
  parseTimeout,
  parseUlidOption,
  parseVersion,
} from './inputs.ts';
import {
  describeDuplicate,
  describeSubmitResult,
  formatKey,
  formatKeyTable,
  printJson,
} from './output.ts';
import { type GlobalOptions, withBus } from './session.ts';
import { exitCodeOf, readInventoryEntry, submitCommand } from './submit.ts';

/** Options of every command that changes a key. */
interface SubmitFlags {
  actor: string;
  timeout: string;
  commandId?: string;
  retryOf?: string;
}

const DEFAULT_TIMEOUT_SECONDS = '30';

function defaultActor(): string {
  const name = process.env.USER ?? process.env.LOGNAME ?? userInfo().username;
  return `user:${name}`;
}

function addSubmitOptions(command: Command): Command {
  return command
    .option('--actor <identity>', 'identity the command is sent as', defaultActor())
    .option(
      '--timeout <seconds>',
      'how long to wait for the outcome, in seconds',
      DEFAULT_TIMEOUT_SECONDS,
    )
    .option(
      '--command-id <id>',
      'reuse the id of an earlier command to resend it (JetStream drops the repeat); a new id by default',
    )
    .option(
      '--retry-of <commandId>',
      'send a new command that retries an earlier one: it gets a new id and names the earlier one as its cause',
    );
}

/**
 * Validates the shared options and the action's data, publishes the command, waits, prints
 * the outcome and sets the exit code. Validation errors throw before anything is published.
 */
async function runKeyCommand(
  command: Command,
  action: KeyAction,
  keyId: string | null,
  buildData: () => Record<string, unknown>,
): Promise<void> {
  const flags = command.opts<SubmitFlags>();
  const globals = command.optsWithGlobals<GlobalOptions>();
  const actor = parseActor(flags.actor);
  const timeoutSeconds = parseTimeout(flags.timeout);
  const commandId =
    flags.commandId === undefined ? undefined : parseUlidOption('--command-id', flags.commandId);
  const retryOf =
    flags.retryOf === undefined ? undefined : parseUlidOption('--retry-of', flags.retryOf);
  if (commandId !== undefined && retryOf !== undefined) {
    throw new UsageError(
      '--command-id and --retry-of exclude each other: resend the same command, or send a new one that retries it',
    );
  }
  const data = buildData();

  const result = await withBus(globals, 'cli', (bus) =>
    submitCommand(bus, {
      action,
      keyId,
      data,
      actor,
      timeoutSeconds,
      ...(commandId === undefined ? {} : { commandId }),
      ...(retryOf === undefined ? {} : { retryOf }),
    }),
  );
  const exitCode = exitCodeOf(result);

  if (globals.json === true) {
    printJson({
      commandId: result.commandId,
      keyId: result.keyId,
      action,
      duplicate: result.duplicate,
      streamSequence: result.streamSequence,
      timedOut: result.timedOut,
      status: result.status,
      key: result.key,
    });
  } else {
    if (result.duplicate) {
      process.stderr.write(`${describeDuplicate(result)}\n`);
    }
    const line = describeSubmitResult(action, result);
    if (exitCode === EXIT_CODES.success) {
      process.stdout.write(`${line}\n`);
    } else {
      process.stderr.write(`${line}\n`);
    }
  }
  process.exitCode = exitCode;
}

/** `keytower keys …`: the key lifecycle commands and inventory reads. */
export function registerKeyCommands(program: Command): void {
  const keys = program.command('keys').description('create, change and inspect keys');

  addSubmitOptions(
    keys
      .command('create')
      .description('create a key on a provider; prints the new key id and version')
      .addOption(new Option('--provider <name>', 'provider that holds the key').default('hsm'))
      .requiredOption('--purpose <purpose>', 'what the key is for: encrypt or sign')
      .requiredOption('--algorithm <name>', 'AES_256 (encrypt), EC_P256 or RSA_3072 (sign)')
      .requiredOption('--label <text>', 'human-readable label, 1 to 128 characters')
      .option('--tag <name=value>', 'tag to set; repeat for several', collect, []),
  ).action(
    async (
      options: {
        provider: string;
        purpose: string;
        algorithm: string;
        label: string;
        tag: string[];
      },
      command: Command,
    ) => {
      await runKeyCommand(command, 'create', null, () => {
        const purpose = parsePurpose(options.purpose);
        const tags = parseTags(options.tag);
        return {
          provider: parseProvider(options.provider),
          purpose,
          algorithm: parseAlgorithm(options.algorithm, purpose),
          label: parseLabel(options.label),
          ...(Object.keys(tags).length > 0 ? { tags } : {}),
        };
      });
    },
  );

  addSubmitOptions(
    keys
      .command('rotate <keyId>')
      .description('create the next version of a key and make it primary'),
  ).action(async (keyId: string, _options: unknown, command: Command) => {
    const id = parseKeyId(keyId);
    await runKeyCommand(command, 'rotate', id, () => ({ keyId: id }));
  });

  for (const action of ['disable', 'enable'] as const) {
    addSubmitOptions(
      keys
        .command(`${action} <keyId>`)
        .description(`${action} one version of a key`)
        .option('--version <number>', `the key version to ${action}`),
    ).action(async (keyId: string, options: { version?: string }, command: Command) => {
      const id = parseKeyId(keyId);
      await runKeyCommand(command, action, id, () => ({
        keyId: id,
        version: parseVersion(options.version),
      }));
    });
  }

  addSubmitOptions(
    keys
      .command('schedule-destroy <keyId>')
      .description('schedule the destruction of a key after a pending window')
      .option(
        '--pending-window <seconds>',
        'pending window in seconds: 604800 (7 days) by default, 7 to 30 days (down to 1 second under a test profile)',
      ),
  ).action(async (keyId: string, options: { pendingWindow?: string }, command: Command) => {
    const id = parseKeyId(keyId);
    await runKeyCommand(command, 'schedule-destroy', id, () => ({
      keyId: id,
      ...(options.pendingWindow === undefined
        ? {}
        : { pendingWindowSeconds: parsePendingWindow(options.pendingWindow) }),
    }));
  });

  addSubmitOptions(
    keys.command('cancel-destroy <keyId>').description('cancel the scheduled destruction of a key'),
  ).action(async (keyId: string, _options: unknown, command: Command) => {
    const id = parseKeyId(keyId);
    await runKeyCommand(command, 'cancel-destroy', id, () => ({ keyId: id }));
  });

  addSubmitOptions(
    keys.command('destroy <keyId>').description('destroy a key whose pending window has passed'),
  ).action(async (keyId: string, _options: unknown, command: Command) => {
    const id = parseKeyId(keyId);
    await runKeyCommand(command, 'destroy', id, () => ({ keyId: id }));
  });

  keys
    .command('list')
    .description('list the keys in the inventory')
    .action(async (_options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const entries = await withBus(globals, 'cli', async (bus) => {
        const inventory = await bus.kv(BUCKETS.inventory);
        const found: InventoryEntry[] = [];
        for await (const key of await inventory.keys()) {
          const entry = await inventory.get(key);
          if (entry !== null && entry.operation === 'PUT') {
            found.push(inventoryEntrySchema.parse(entry.json()));
          }
        }
        return found.sort((left, right) => left.createdAt.localeCompare(right.createdAt));
      });
      if (globals.json === true) {
        printJson(entries);
      } else if (entries.length === 0) {
        process.stdout.write('no keys\n');
      } else {
        process.stdout.write(`${formatKeyTable(entries)}\n`);
      }
    });

  keys
    .command('show <keyId>')
    .description('show one key: state, versions, pending operation')
    .action(async (keyId: string, _options: unknown, command: Command) => {
      const id = parseKeyId(keyId);
      const globals = command.optsWithGlobals<GlobalOptions>();
      const entry = await withBus(globals, 'cli', (bus) => readInventoryEntry(bus, id));
      if (entry === null) {
        throw new CliError(`key ${id} not found`, EXIT_CODES.rejected);
      }
      if (globals.json === true) {
        printJson(entry);
      } else {
        process.stdout.write(`${formatKey(entry)}\n`);
      }
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
