/**
 * The demo scenario, shared by `npm run demo` (on the `dev` stack) and
 * `tests/e2e/demo-scenario.test.ts` (on the `test` stack). It sends key lifecycle commands through
 * the real `keytower` CLI. Then it proves that every audit record they caused reached ClickHouse
 * and the Kafka SIEM topic, and that the audit chain verifies.
 *
 * The services (policy, connector-hsm, audit and both sinks) must already run on the stack.
 */
import {
  commandStatusEntrySchema,
  inventoryEntrySchema,
  type CommandStatusEntry,
  type InventoryEntry,
} from '@keytower/contracts';
import type { StackDescriptor } from '@keytower/config';
import { checkAuditTrail, type AuditTrailReport } from './demo-audit.ts';
import { runCli, type CliRun } from './demo-cli.ts';

/** Options of {@link runDemoScenario}. */
export interface DemoScenarioOptions {
  descriptor: StackDescriptor;
  /** Receives each line of the transcript; default `console.log`. */
  print?: (line: string) => void;
  /** Time each CLI command waits for its outcome, in seconds; default 30. */
  commandTimeoutSeconds?: number;
  /** Time the audit records have to reach both sinks, in milliseconds; default 60 s. */
  auditTimeoutMs?: number;
}

/** One step of the scenario as it ran. */
export interface DemoStep {
  number: number;
  title: string;
  ok: boolean;
  detail: string;
  elapsedMs: number;
}

/** The three keys the scenario creates. */
export interface DemoKeys {
  encryption: string;
  ecSigning: string;
  rsaSigning: string;
}

/** Report of the steps run and checked; `ok` is true only when every step passed. */
export interface DemoScenarioReport {
  ok: boolean;
  /** The step that failed, when one did. */
  failedStep: DemoStep | undefined;
  steps: DemoStep[];
  keys: Partial<DemoKeys>;
  commandIds: string[];
  inventory: InventoryEntry[];
  audit: AuditTrailReport | undefined;
  elapsedMs: number;
}

/** Raised inside a step to fail it with a message meant for the person watching. */
class StepFailure extends Error {
  override name = 'StepFailure';
}

/** The fields of `keytower … --json` output for a key command. */
interface SubmitOutput {
  commandId: string;
  keyId: string;
  duplicate: boolean;
  timedOut: boolean;
  status: CommandStatusEntry | null;
  key: InventoryEntry | null;
}

const STEP_COUNT = 10;

/** The identity the scenario's commands are sent as; policy's allow-list must grant it every action. */
export const DEMO_ACTOR = 'user:demo';

/**
 * Runs the scenario step by step and prints a transcript. It stops at the first failing step and
 * returns a report naming it; it throws only when it cannot run at all.
 */
export async function runDemoScenario(options: DemoScenarioOptions): Promise<DemoScenarioReport> {
  const print = options.print ?? ((line: string) => console.log(line));
  const stack = options.descriptor.profile;
  const timeoutSeconds = options.commandTimeoutSeconds ?? 30;
  const runLabel = `demo-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '')}`;
  const started = performance.now();

  const steps: DemoStep[] = [];
  const keys: Partial<DemoKeys> = {};
  const submitted: SubmitOutput[] = [];
  let inventory: InventoryEntry[] = [];
  let audit: AuditTrailReport | undefined;

  const step = async (title: string, work: () => Promise<string>): Promise<void> => {
    const number = steps.length + 1;
    print(`\n[${number}/${STEP_COUNT}] ${title}`);
    const stepStarted = performance.now();
    try {
      const detail = await work();
      const entry = { number, title, ok: true, detail, elapsedMs: performance.now() - stepStarted };
      steps.push(entry);
      print(`      ok: ${detail} (${Math.round(entry.elapsedMs)} ms)`);
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      const entry = {
        number,
        title,
        ok: false,
        detail,
        elapsedMs: performance.now() - stepStarted,
      };
      steps.push(entry);
      print(`      FAILED: ${detail}`);
      throw new StepFailure(detail, { cause: error });
    }
  };

  const submit = async (args: string[]): Promise<SubmitOutput> => {
    const run = await runCli(
      stack,
      [...args, '--actor', DEMO_ACTOR, '--timeout', String(timeoutSeconds)],
      timeoutSeconds,
    );
    print(`      $ ${run.commandLine}`);
    const output = parseSubmitOutput(run);
    submitted.push(output);
    if (output.status?.status !== 'succeeded') {
      const reason = output.status?.reason;
      const state = output.timedOut ? 'timed out' : (output.status?.status ?? 'no status');
      throw new StepFailure(
        `command ${output.commandId} ${state}${reason === undefined ? '' : `: ${reason.code}: ${reason.message}`} (exit code ${run.exitCode})`,
      );
    }
    return output;
  };

  try {
    await step('create an AES_256 encryption key on the HSM', async () => {
      const output = await submit([
        'keys',
        'create',
        '--provider',
        'hsm',
        '--purpose',
        'encrypt',
        '--algorithm',
        'AES_256',
        '--label',
        `${runLabel}-payments-kek`,
      ]);
      keys.encryption = output.keyId;
      return `key ${output.keyId} version ${output.key?.primaryVersion ?? '?'} (command ${output.commandId})`;
    });

    await step('create an EC_P256 signing key on the HSM', async () => {
      const output = await submit([
        'keys',
        'create',
        '--provider',
        'hsm',
        '--purpose',
        'sign',
        '--algorithm',
        'EC_P256',
        '--label',
        `${runLabel}-release-signing`,
      ]);
      keys.ecSigning = output.keyId;
      return `key ${output.keyId} version ${output.key?.primaryVersion ?? '?'} (command ${output.commandId})`;
    });

    await step('create an RSA_3072 signing key on the HSM', async () => {
      const output = await submit([
        'keys',
        'create',
        '--provider',
        'hsm',
        '--purpose',
        'sign',
        '--algorithm',
        'RSA_3072',
        '--label',
        `${runLabel}-document-signing`,
      ]);
      keys.rsaSigning = output.keyId;
      return `key ${output.keyId} version ${output.key?.primaryVersion ?? '?'} (command ${output.commandId})`;
    });

    await step('rotate the encryption key', async () => {
      const output = await submit(['keys', 'rotate', required(keys.encryption)]);
      const primary = output.key?.primaryVersion;
      if (primary !== 2) {
        throw new StepFailure(
          `expected version 2 to be primary after the rotation, the inventory shows ${primary ?? 'none'}`,
        );
      }
      return `version 2 is primary (command ${output.commandId})`;
    });

    await step('disable version 1 of the encryption key', async () => {
      const output = await submit(['keys', 'disable', required(keys.encryption), '--version', '1']);
      const version = output.key?.versions.find((entry) => entry.version === 1);
      if (version?.state !== 'disabled') {
        throw new StepFailure(
          `expected version 1 to be disabled, the inventory shows ${version?.state ?? 'no such version'}`,
        );
      }
      return `version 1 is disabled, version 2 stays primary (command ${output.commandId})`;
    });

    await step('schedule the EC signing key for destruction (default pending window)', async () => {
      const output = await submit(['keys', 'schedule-destroy', required(keys.ecSigning)]);
      if (output.key?.state !== 'pending-destruction' || output.key.destroyAfter === null) {
        throw new StepFailure(
          `expected state pending-destruction with a destroy time, the inventory shows ${output.key?.state ?? 'nothing'}`,
        );
      }
      return `pending destruction until ${output.key.destroyAfter} (command ${output.commandId})`;
    });

    await step('list the inventory', async () => {
      const run = await runCli(stack, ['keys', 'list'], timeoutSeconds);
      print(`      $ ${run.commandLine}`);
      if (run.exitCode !== 0 || !Array.isArray(run.json)) {
        throw new StepFailure(
          `keys list exited with code ${run.exitCode}: ${run.stderr.trim() || run.stdout.trim()}`,
        );
      }
      inventory = run.json.map((entry) => inventoryEntrySchema.parse(entry));
      const ours = inventory.filter((entry) => Object.values(keys).includes(entry.keyId));
      for (const entry of ours) {
        print(`      ${describeInventoryEntry(entry)}`);
      }
      checkInventory(ours, keys as DemoKeys);
      return `${inventory.length} key(s) in the inventory, the scenario's 3 in the expected states`;
    });

    audit = await checkAuditTrail({
      descriptor: options.descriptor,
      keyIds: Object.values(keys),
      commandIds: submitted.map((output) => output.commandId),
      terminalEventIds: submitted.flatMap((output) =>
        output.status?.terminalEvent === undefined ? [] : [output.status.terminalEvent.id],
      ),
      timeoutMs: options.auditTimeoutMs ?? 60_000,
      step,
    });
  } catch (error) {
    if (!(error instanceof StepFailure)) {
      throw error;
    }
  }

  const failedStep = steps.find((entry) => !entry.ok);
  return {
    ok: failedStep === undefined && steps.length === STEP_COUNT,
    failedStep,
    steps,
    keys,
    commandIds: submitted.map((output) => output.commandId),
    inventory,
    audit,
    elapsedMs: performance.now() - started,
  };
}

function required(keyId: string | undefined): string {
  if (keyId === undefined) {
    throw new StepFailure('an earlier step did not create the key this step needs');
  }
  return keyId;
}

function parseSubmitOutput(run: CliRun): SubmitOutput {
  const output = run.json as Partial<SubmitOutput> | undefined;
  if (
    output === undefined ||
    typeof output.commandId !== 'string' ||
    typeof output.keyId !== 'string'
  ) {
    throw new StepFailure(
      `the CLI exited with code ${run.exitCode} without JSON output: ${run.stderr.trim() || run.stdout.trim() || '(no output)'}`,
    );
  }
  return {
    commandId: output.commandId,
    keyId: output.keyId,
    duplicate: output.duplicate === true,
    timedOut: output.timedOut === true,
    status: output.status == null ? null : commandStatusEntrySchema.parse(output.status),
    key: output.key == null ? null : inventoryEntrySchema.parse(output.key),
  };
}

function describeInventoryEntry(entry: InventoryEntry): string {
  const versions = entry.versions
    .map((version) => `v${version.version} ${version.state}`)
    .join(', ');
  const destroy = entry.destroyAfter === null ? '' : `, destroy after ${entry.destroyAfter}`;
  return `${entry.keyId}  ${entry.algorithm.padEnd(8)}  ${entry.state.padEnd(19)}  primary v${entry.primaryVersion ?? '-'}  [${versions}]${destroy}  ${entry.label}`;
}

/** Checks the end state of the scenario's keys in the inventory; throws naming the first difference. */
function checkInventory(entries: readonly InventoryEntry[], keys: DemoKeys): void {
  const byId = new Map(entries.map((entry) => [entry.keyId, entry]));
  const expectations: Array<{
    keyId: string;
    algorithm: string;
    state: string;
    primary: number;
    versions: string[];
  }> = [
    {
      keyId: keys.encryption,
      algorithm: 'AES_256',
      state: 'enabled',
      primary: 2,
      versions: ['v1 disabled', 'v2 enabled'],
    },
    {
      keyId: keys.ecSigning,
      algorithm: 'EC_P256',
      state: 'pending-destruction',
      primary: 1,
      versions: ['v1 enabled'],
    },
    {
      keyId: keys.rsaSigning,
      algorithm: 'RSA_3072',
      state: 'enabled',
      primary: 1,
      versions: ['v1 enabled'],
    },
  ];

  for (const expected of expectations) {
    const entry = byId.get(expected.keyId);
    if (entry === undefined) {
      throw new StepFailure(`key ${expected.keyId} is missing from the inventory`);
    }
    const versions = entry.versions.map((version) => `v${version.version} ${version.state}`);
    const found = {
      algorithm: entry.algorithm,
      state: entry.state,
      primary: entry.primaryVersion,
      versions,
      pending: entry.pending,
    };
    const matches =
      entry.provider === 'hsm' &&
      entry.algorithm === expected.algorithm &&
      entry.state === expected.state &&
      entry.primaryVersion === expected.primary &&
      entry.pending === null &&
      versions.join(',') === expected.versions.join(',');
    if (!matches) {
      throw new StepFailure(
        `key ${expected.keyId}: expected ${JSON.stringify({ ...expected, keyId: undefined, pending: null })}, found ${JSON.stringify(found)}`,
      );
    }
  }
}

export { StepFailure };
