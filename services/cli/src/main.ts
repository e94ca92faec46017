#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerAdminCommands } from './admin.ts';
import { registerAuditCommands } from './audit.ts';
import { registerCommandCommands } from './commands.ts';
import { CliError, EXIT_CODES } from './errors.ts';
import { registerKeyCommands } from './keys.ts';

/**
 * Builds the `keytower` command. Exit codes: 0 success, 1 rejected or not found, 2 invalid input
 * (nothing published), 3 failed or dead-lettered, 4 timed out, 5 NATS unavailable.
 */
export function buildProgram(): Command {
  const program = new Command('keytower')
    .description('Run the lifecycle of keys held in cloud KMSs and HSMs through keytower')
    .option(
      '--stack <profile>',
      'connect to a local stack profile (reads .data/<profile>/stack.json); the KEYTOWER_NATS_* variables otherwise',
    )
    .option('--json', 'print machine-readable JSON')
    .showHelpAfterError()
    .addHelpText(
      'after',
      '\nExit codes: 0 success, 1 rejected or not found, 2 invalid input, 3 failed or dead-lettered, 4 timed out, 5 NATS unavailable.',
    );

  registerKeyCommands(program);
  registerCommandCommands(program);
  registerAuditCommands(program);
  registerAdminCommands(program);

  program.exitOverride();
  for (const command of allCommands(program)) {
    command.exitOverride();
  }
  return program;
}

function allCommands(command: Command): Command[] {
  return command.commands.flatMap((child) => [child, ...allCommands(child)]);
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander already printed the message; help and version requests exit 0.
      process.exitCode = error.exitCode === 0 ? EXIT_CODES.success : EXIT_CODES.usage;
      return;
    }
    if (error instanceof CliError) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = error.exitCode;
      return;
    }
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = EXIT_CODES.unavailable;
  }
}

await main(process.argv);
