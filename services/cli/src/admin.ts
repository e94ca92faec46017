import type { Command } from 'commander';
import { provision } from '@keytower/bus';
import { topology } from '@keytower/contracts';
import { createCliLogger } from './connection.ts';
import { printJson } from './output.ts';
import { type GlobalOptions, withBus } from './session.ts';

/** `keytower admin …`: operations that need the NATS admin user. */
export function registerAdminCommands(program: Command): void {
  const admin = program.command('admin').description('administration with the NATS admin user');

  admin
    .command('provision')
    .description(
      'create or update the JetStream streams, consumers and KV buckets defined in the contracts (idempotent)',
    )
    .action(async (_options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const report = await withBus(globals, 'admin', (bus) =>
        provision(bus.connection, topology, { logger: createCliLogger() }),
      );
      if (globals.json === true) {
        printJson(report);
        return;
      }
      process.stdout.write(
        `provisioned the topology: ${report.created.length} created, ${report.updated.length} updated, ${report.unchanged.length} unchanged\n`,
      );
      for (const resource of [
        ...report.created.map((name) => `created ${name}`),
        ...report.updated.map((name) => `updated ${name}`),
      ]) {
        process.stdout.write(`  ${resource}\n`);
      }
    });
}
