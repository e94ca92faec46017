#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerAdminCommands } from './admin.ts';
import { registerAuditCommands } from './audit.ts';
import { registerCommandCommands } from './commands.ts';
import { CliError, EXIT_CODES, UsageError } from './errors.ts';
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

/** Returns the words that run a command, such as `keytower keys create`. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let current: Command | null = command; current !== null; current = current.parent) {
    names.unshift(current.name());
  }
  return names.join(' ');
}

function allCommands(command: Command): Command[] {
  return command.commands.flatMap((child) => [child, ...allCommands(child)]);
}

/** Returns the index of the first argument after the global options (`--stack <profile>`, `--json`). */
function skipGlobalOptions(args: readonly string[]): number {
  let index = 0;
  while (index < args.length) {
    const arg = args[index] ?? '';
    if (arg === '--stack') {
      index += 2;
    } else if (arg === '--json' || arg.startsWith('--stack=')) {
      index += 1;
    } else {
      break;
    }
  }
  return index;
}

/**
 * Rewrites `help <command> <subcommand>…` into `<command> <subcommand>… --help`. Commander's own
 * help command reads only its first operand, so `help keys create` would print the `keys` help.
 * Global options before `help` and options after the command names are kept.
 */
function expandHelpCommand(program: Command, args: readonly string[]): string[] {
  const helpIndex = skipGlobalOptions(args);
  if (args[helpIndex] !== 'help' || helpIndex + 1 >= args.length) {
    return [...args];
  }
  const globals = args.slice(0, helpIndex);
  const rest = args.slice(helpIndex + 1);
  const firstOption = rest.findIndex((arg) => arg.startsWith('-'));
  const names = firstOption === -1 ? rest : rest.slice(0, firstOption);
  const options = firstOption === -1 ? [] : rest.slice(firstOption);

  let command = program;
  for (const name of names) {
    const child = command.commands.find(
      (candidate) => candidate.name() === name || candidate.aliases().includes(name),
    );
    if (child === undefined) {
      throw new UsageError(
        `unknown command '${name}': \`${commandPath(command)} --help\` lists the commands`,
      );
    }
    command = child;
  }
  return [...globals, ...names, ...options, '--help'];
}

/** Closes quietly when the reader of standard output goes away (`keytower … | head`). */
function exitOnClosedStdout(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') {
      process.exit(EXIT_CODES.success);
    }
    throw error;
  });
}

async function main(argv: string[]): Promise<void> {
  exitOnClosedStdout();
  const program = buildProgram();
  try {
    const args = expandHelpCommand(program, argv.slice(2));
    await program.parseAsync(args, { from: 'user' });
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
