import type { Command } from 'commander';
import * as busModule from '@keytower/bus';
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
      await withBus(globals, 'admin', async (bus) => {
        await provisionTopology(bus.connection);
      });
      const summary = {
        streams: topology.streams.map((stream) => stream.name),
        consumers: topology.consumers.map((consumer) => `${consumer.stream}/${consumer.durable}`),
        buckets: topology.buckets.map((bucket) => bucket.bucket),
      };
      if (globals.json === true) {
        printJson({ provisioned: true, ...summary });
        return;
      }
      process.stdout.write(
        `provisioned ${summary.streams.length} streams, ${summary.consumers.length} consumers, ${summary.buckets.length} KV buckets\n`,
      );
    });
}

type ProvisionFunction = (
  connection: unknown,
  spec: typeof topology,
  options: { logger: ReturnType<typeof createCliLogger> },
) => Promise<unknown>;

// NOTE: `provision` is looked up at run time until @keytower/bus exports it, so the rest of
// the CLI (and `admin --help`) loads without it.
async function provisionTopology(connection: unknown): Promise<void> {
  const provision = (busModule as Record<string, unknown>).provision as
    ProvisionFunction | undefined;
  if (typeof provision !== 'function') {
    throw new Error(
      'this build of @keytower/bus has no provision(): cannot provision the topology',
    );
  }
  await provision(connection, topology, { logger: createCliLogger() });
}
