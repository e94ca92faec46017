// The `npm run demo` scenario on the test stack (`KEYTOWER_STACK_FILE`, written by `npm test`).
// The five services run as their own processes and the keytower CLI runs as a child process per
// command. The scenario's audit records are then checked in ClickHouse, on the Kafka SIEM topic
// and in the verified chain. It is the function the demo runs, so the demo cannot rot unnoticed.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { connectBus } from '@keytower/bus';
import { readStackDescriptor, type StackDescriptor } from '@keytower/config';
import { BUCKETS } from '@keytower/contracts';
import { HSM_CAPABILITIES } from '@keytower/provider';
import { createLogger } from '@keytower/telemetry';

// eslint-disable-next-line @nx/enforce-module-boundaries -- the root scripts are not an Nx project; this suite runs the demo's own scenario on purpose
import {
  DEMO_ACTOR,
  runDemoScenario,
  type DemoScenarioReport,
} from '../../scripts/lib/demo-scenario.ts';
// eslint-disable-next-line @nx/enforce-module-boundaries -- see above
import { startServices, type RunningServices } from '../../scripts/lib/demo-services.ts';
// eslint-disable-next-line @nx/enforce-module-boundaries -- see above
import { REPO_ROOT } from '../../scripts/lib/repo.ts';

/** Health ports of this suite's services: clear of `npm start` (7100…) and of the bench (27100…). */
const HEALTH_PORT_BASE = 17150;

describe('demo scenario on the test stack', { timeout: 300_000 }, () => {
  let descriptor: StackDescriptor;
  let services: RunningServices | undefined;
  let report: DemoScenarioReport;
  const transcript: string[] = [];

  before(async () => {
    descriptor = readStackDescriptor();
    services = await startServices({
      descriptor,
      healthPortBase: HEALTH_PORT_BASE,
      logDir: join(REPO_ROOT, '.data', descriptor.profile, 'logs', 'e2e-demo-scenario'),
      extraEnvironment: { policy: { KEYTOWER_POLICY_ALLOW: `${DEMO_ACTOR}=*` } },
    });
    report = await runDemoScenario({ descriptor, print: (line) => transcript.push(line) });
  });

  after(async () => {
    await services?.stopAll();
  });

  test('every step passes', () => {
    assert.equal(report.failedStep, undefined, `failed step:\n${transcript.join('\n')}`);
    assert.equal(report.steps.length, 10, transcript.join('\n'));
    assert.equal(report.ok, true);
  });

  test('three keys and six commands', () => {
    assert.equal(new Set(Object.values(report.keys)).size, 3);
    assert.equal(report.commandIds.length, 6);
    assert.equal(new Set(report.commandIds).size, 6);
  });

  test('inventory holds the end states', () => {
    const byId = new Map(report.inventory.map((entry) => [entry.keyId, entry]));
    const encryption = byId.get(report.keys.encryption ?? '');
    const ecSigning = byId.get(report.keys.ecSigning ?? '');
    const rsaSigning = byId.get(report.keys.rsaSigning ?? '');
    assert.equal(encryption?.primaryVersion, 2);
    assert.deepEqual(
      encryption?.versions.map((version) => [version.version, version.state]),
      [
        [1, 'disabled'],
        [2, 'enabled'],
      ],
    );
    assert.equal(ecSigning?.state, 'pending-destruction');
    assert.notEqual(ecSigning?.destroyAfter, null);
    assert.equal(rsaSigning?.state, 'enabled');
    assert.equal(rsaSigning?.algorithm, 'RSA_3072');
  });

  test('every audit record reached both sinks', () => {
    const audit = report.audit;
    assert.ok(audit !== undefined, 'the audit steps did not run');
    // Each of the six commands causes at least its command, its operation and its outcome event.
    assert.ok(
      audit.expectedRecordIds.length >= 18,
      `only ${audit.expectedRecordIds.length} records expected`,
    );
    assert.equal(new Set(audit.expectedRecordIds).size, audit.expectedRecordIds.length);
    assert.equal(audit.clickhouseRecords, audit.expectedRecordIds.length);
    assert.equal(audit.kafkaRecords, audit.expectedRecordIds.length);
  });

  test('stored chain verifies past the scenario', () => {
    const audit = report.audit;
    assert.ok(audit !== undefined, 'the audit steps did not run');
    assert.ok(audit.chainVerified >= audit.expectedRecordIds.length);
    assert.equal(audit.chainHeadSequence, audit.chainVerified);
    assert.match(audit.chainHeadHash, /^[0-9a-f]{64}$/);
  });
});

// Without connector-hsm nothing carries out the first create, so the scenario must stop there and
// say so: this is what makes `npm run demo` exit non-zero instead of printing a false success.
/**
 * Stores the HSM capability descriptor, as a connector does when it starts, so policy admits HSM
 * commands although no connector runs now: a registered connector that is down.
 */
async function registerHsmConnector(descriptor: StackDescriptor): Promise<void> {
  const admin = descriptor.nats.users.admin;
  if (admin === undefined) throw new Error('the stack descriptor has no admin NATS user');

  const bus = await connectBus({
    servers: descriptor.nats.url,
    user: admin.user,
    password: admin.password,
    name: 'e2e-demo-register-hsm',
    logger: createLogger({ service: 'e2e', level: 'warn', destination: process.stderr }),
  });
  try {
    const capabilities = await bus.kv(BUCKETS.capabilities);
    await capabilities.put(HSM_CAPABILITIES.provider, JSON.stringify(HSM_CAPABILITIES));
  } finally {
    await bus.close();
  }
}

describe('demo scenario without a connector', { timeout: 120_000 }, () => {
  let services: RunningServices | undefined;
  let report: DemoScenarioReport;

  before(async () => {
    const descriptor = readStackDescriptor();
    await registerHsmConnector(descriptor);
    services = await startServices({
      descriptor,
      names: ['policy'],
      healthPortBase: HEALTH_PORT_BASE + 10,
      logDir: join(REPO_ROOT, '.data', descriptor.profile, 'logs', 'e2e-demo-no-connector'),
      extraEnvironment: { policy: { KEYTOWER_POLICY_ALLOW: `${DEMO_ACTOR}=*` } },
    });
    report = await runDemoScenario({
      descriptor,
      commandTimeoutSeconds: 2,
      print: () => undefined,
    });
  });

  after(async () => {
    await services?.stopAll();
  });

  test('stops at the first step', () => {
    assert.equal(report.ok, false);
    assert.equal(report.steps.length, 1);
    assert.equal(report.failedStep?.number, 1);
  });

  test('names the timed-out command', () => {
    assert.match(report.failedStep?.detail ?? '', /^command [0-9A-Z]{26} timed out/);
    assert.equal(report.audit, undefined);
  });
});
