// Servers, processes and helpers shared by the policy and CLI end-to-end suites.
//
// With `KEYTOWER_STACK_FILE` set, the suites use the test stack's NATS and its users. Without
// it, they start their own nats-server on 127.0.0.1:54222 (a free port when that one is
// taken) with the users and permissions generated from the contracts, and provision the
// topology with `provision()`, exactly as the local stack does.

import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type Bus } from '@keytower/bus';
import {
  connectAs as connectTestUser,
  type Credential,
  natsEnvironment as startNatsEnvironment,
  type NatsEnvironment,
} from '@keytower/testkit';
import { CAPABILITIES } from '@keytower/provider';
import {
  BUCKETS,
  buildEnvelope,
  type CommandStatusEntry,
  commandStatusEntrySchema,
  deriveKeyId,
  type Envelope,
  type KeyAction,
  messageTypes,
  newCommandId,
  PROVIDERS,
  type ProviderName,
  STREAMS,
  subjects,
} from '@keytower/contracts';
import { DeliverPolicy } from '@nats-io/jetstream';

export const REPO_ROOT = resolve(fileURLToPath(import.meta.url), '..', '..', '..');
const PREFERRED_PORT = 54222;

/** Returns the test stack's NATS when `KEYTOWER_STACK_FILE` is set, else starts a private one. */
export async function natsEnvironment(): Promise<NatsEnvironment> {
  return await startNatsEnvironment({ preferredPort: PREFERRED_PORT });
}

export { type Credential, type NatsEnvironment };

/**
 * Connects as one of the environment's NATS users. Connecting as `connector-<provider>` also
 * registers that provider's capability descriptor, as a connector does when it starts. The
 * suites connect as a connector user to play the connector themselves, and policy rejects
 * every create for a provider with no registered connector.
 */
export async function connectAs(environment: NatsEnvironment, user: string): Promise<Bus> {
  const bus = await connectTestUser(environment, user);
  const provider = user.replace(/^connector-/, '');
  if (user.startsWith('connector-') && (PROVIDERS as readonly string[]).includes(provider)) {
    await registerStandInConnector(bus, provider as ProviderName);
  }
  return bus;
}

/**
 * Stores the capability descriptor of `provider` in `kms_capabilities`, as the provider's
 * connector does at start, so policy admits creates for it. `bus` must be connected as that
 * connector's user or as `admin`.
 */
export async function registerStandInConnector(bus: Bus, provider: ProviderName): Promise<void> {
  const capabilities = await bus.kv(BUCKETS.capabilities);
  await capabilities.put(
    provider,
    JSON.stringify({ ...CAPABILITIES[provider], publishedAt: new Date().toISOString() }),
  );
}

/** A service process started by a suite. */
export interface ServiceProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Everything the process wrote so far. */
  output(): string;
  /** Sends SIGTERM to this process only and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Starts `services/<name>/src/main.ts` with the environment's NATS settings for the user of the
 * same name, and waits until a log line matches `readyPattern`.
 */
export async function startService(
  environment: NatsEnvironment,
  name: string,
  options: {
    user?: string;
    env?: Record<string, string>;
    readyPattern: RegExp;
    timeoutMs?: number;
  },
): Promise<ServiceProcess> {
  const credential = environment.users[options.user ?? name];
  if (credential === undefined) {
    throw new Error(`the NATS environment has no user "${options.user ?? name}"`);
  }
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  Object.assign(env, {
    KEYTOWER_NATS_URL: environment.url,
    KEYTOWER_NATS_USER: credential.user,
    KEYTOWER_NATS_PASSWORD: credential.password,
    KEYTOWER_LOG_LEVEL: 'info',
    ...options.env,
  });
  const child = spawn(process.execPath, [join(REPO_ROOT, 'services', name, 'src', 'main.ts')], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));

  const service: ServiceProcess = {
    name,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) {
        return;
      }
      const exited = new Promise((resolveExit) => child.once('exit', resolveExit));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };

  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  while (!options.readyPattern.test(output)) {
    if (child.exitCode !== null) {
      throw new Error(`${name} exited with code ${child.exitCode} before it was ready:\n${output}`);
    }
    if (Date.now() > deadline) {
      await service.stop();
      throw new Error(`${name} was not ready within ${options.timeoutMs ?? 20_000} ms:\n${output}`);
    }
    await sleep(50);
  }
  return service;
}

/** Starts the policy service with a test allow-list and the test profile. */
export async function startPolicy(
  environment: NatsEnvironment,
  env: Record<string, string> = {},
): Promise<ServiceProcess> {
  return await startService(environment, 'policy', {
    env: {
      KEYTOWER_POLICY_ALLOW: 'user:alice=*;user:bob=create',
      KEYTOWER_TEST_PROFILE: 'true',
      ...env,
    },
    readyPattern: /policy consuming commands/,
  });
}

/** Builds a key command envelope; a create's subject is the key id derived from its id. */
export function commandEnvelope(
  action: KeyAction,
  data: Record<string, unknown>,
  options: { id?: string; actor?: string } = {},
): Envelope {
  const id = options.id ?? newCommandId();
  const keyId = action === 'create' ? deriveKeyId(id) : String(data.keyId);
  return buildEnvelope({
    id,
    type: messageTypes.command(action),
    subject: keyId,
    data,
    actor: options.actor ?? 'user:alice',
    source: 'keytower/e2e',
  });
}

/** Publishes a command envelope on its subject. */
export async function sendCommand(bus: Bus, envelope: Envelope) {
  const action = envelope.type.split('.')[3] as KeyAction;
  return await bus.publish(subjects.command(action, envelope.subject), envelope);
}

/** Waits until the command's status entry matches `accept`; fails after `timeoutMs`. */
export async function waitForStatus(
  bus: Bus,
  commandId: string,
  accept: (entry: CommandStatusEntry) => boolean,
  timeoutMs = 15_000,
): Promise<CommandStatusEntry> {
  const statuses = await bus.kv(BUCKETS.commands);
  const deadline = Date.now() + timeoutMs;
  let last: CommandStatusEntry | null = null;
  while (Date.now() < deadline) {
    const stored = await statuses.get(commandId);
    if (stored !== null && stored.operation === 'PUT') {
      last = commandStatusEntrySchema.parse(stored.json());
      if (accept(last)) {
        return last;
      }
    }
    await sleep(50);
  }
  throw new Error(
    `command ${commandId}: status did not match within ${timeoutMs} ms; last ${JSON.stringify(last)}`,
  );
}

/** Reads every message of a stream whose subject matches `filter`, in stream order. */
export async function readStream(
  bus: Bus,
  stream: string,
  filter: string,
): Promise<Array<{ subject: string; seq: number; data: Record<string, unknown> }>> {
  const info = await bus.manager.streams.info(stream, { subjects_filter: filter });
  const subjectsSeen = info.state.subjects ?? {};
  const total = Object.values(subjectsSeen).reduce((sum, count) => sum + count, 0);
  if (total === 0) {
    return [];
  }
  const consumer = await bus.jetstream.consumers.get(stream, {
    filter_subjects: filter,
    deliver_policy: DeliverPolicy.All,
  });
  const found: Array<{ subject: string; seq: number; data: Record<string, unknown> }> = [];
  const messages = await consumer.fetch({ max_messages: total, expires: 5_000 });
  for await (const message of messages) {
    found.push({
      subject: message.subject,
      seq: message.seq,
      data: message.json<Record<string, unknown>>(),
    });
    if (found.length >= total) {
      break;
    }
  }
  return found;
}

/** Counts the operations policy published for a key. */
export async function operationsFor(bus: Bus, keyId: string) {
  return await readStream(bus, STREAMS.operations, `kms.op.v1.*.*.${keyId}`);
}

/** Output and exit code of one `keytower` run. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `services/cli/src/main.ts` with the given arguments and environment; never throws on exit codes. */
export async function runCli(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<CliRun> {
  const child = spawn(
    process.execPath,
    [join(REPO_ROOT, 'services', 'cli', 'src', 'main.ts'), ...args],
    {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, USER: 'alice', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolveExit) =>
    child.once('close', (exitCode) => resolveExit(exitCode)),
  );
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Returns the `KEYTOWER_NATS_*` variables of one user. */
export function natsVariables(environment: NatsEnvironment, user: string): Record<string, string> {
  const credential = environment.users[user];
  if (credential === undefined) {
    throw new Error(`the NATS environment has no user "${user}"`);
  }
  return {
    KEYTOWER_NATS_URL: environment.url,
    KEYTOWER_NATS_USER: credential.user,
    KEYTOWER_NATS_PASSWORD: credential.password,
  };
}
