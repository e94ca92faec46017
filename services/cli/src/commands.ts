import type { Command } from 'commander';
import { BUCKETS, commandStatusEntrySchema } from '@keytower/contracts';
import { CliError, EXIT_CODES } from './errors.ts';
import { parseCommandId } from './inputs.ts';
import { formatStatus, printJson } from './output.ts';
import { type GlobalOptions, withBus } from './session.ts';

/** `keytower commands show <id>`: the status policy recorded for one command. */
export function registerCommandCommands(program: Command): void {
  const commands = program.command('commands').description('inspect submitted commands');

  commands
    .command('show <commandId>')
    .description('show the status of a command: decision, operation, terminal event')
    .action(async (commandId: string, _options: unknown, command: Command) => {
      const id = parseCommandId(commandId);
      const globals = command.optsWithGlobals<GlobalOptions>();
      const status = await withBus(globals, 'cli', async (bus) => {
        const statuses = await bus.kv(BUCKETS.commands);
        const entry = await statuses.get(id);
        return entry === null || entry.operation !== 'PUT'
          ? null
          : commandStatusEntrySchema.parse(entry.json());
      });
      if (status === null) {
        throw new CliError(`command ${id} not found`, EXIT_CODES.rejected);
      }
      if (globals.json === true) {
        printJson(status);
      } else {
        process.stdout.write(`${formatStatus(status)}\n`);
      }
    });
}
