// The fenced audit writer on a real NATS server: a chain from genesis, and a takeover.
// In the takeover the former writer is frozen right before an append and resumes after
// the new writer has appended, so its append must be rejected instead of forking the chain.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { GENESIS_HASH, verifyChain, type ChainHead } from '@keytower/audit-chain';
import { runAuditWriter, HEAD_KEY } from '@keytower/audit';
import { BUCKETS, STREAMS, subjects } from '@keytower/contracts';
import { createLogger } from '@keytower/telemetry';

import {
  publishCommands,
  readAuditRecords,
  startAuditBus,
  streamCount,
  waitFor,
  type AuditBus,
} from './support/audit-bus.ts';
import { makeWorkDir, removeWorkDir } from './support/audit-servers.ts';

const AUDIT_MAIN = fileURLToPath(new URL('../../services/audit/src/main.ts', import.meta.url));

function processState(pid: number): string {
  // The third field of /proc/<pid>/stat is the state: T means stopped by a signal.
  return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[0] ?? '?';
}

describe('audit writer', { timeout: 120_000 }, () => {
  let dir: string;
  let stack: AuditBus;

  before(async () => {
    dir = makeWorkDir('kt-audit-writer');
    // A 3 s ack wait lets the new writer receive the frozen writer's message in test time.
    stack = await startAuditBus(dir, { ackWaitSeconds: 3 });
  });

  after(async () => {
    await stack?.close();
    removeWorkDir(dir);
  });

  test('chains three messages from genesis', async () => {
    const bus = await stack.connect('audit');
    const stopping = new AbortController();
    const running = runAuditWriter({
      bus,
      holder: 'writer-genesis',
      leaseTtlSeconds: 2,
      standbyPollMs: 100,
      logger: stack.logger,
      signal: stopping.signal,
    });
    try {
      const keyIds = await publishCommands(stack.admin, 3);
      await waitFor(
        '3 audit records',
        15_000,
        async () => (await streamCount(stack.admin, STREAMS.audit)) === 3,
      );

      const records = await readAuditRecords(stack.admin);
      assert.deepEqual(
        records.map((record) => record.sequence),
        [1, 2, 3],
      );
      assert.equal(records[0]?.prevHash, GENESIS_HASH);
      assert.deepEqual(
        records.map((record) => record.keyId),
        keyIds,
      );
      assert.deepEqual(
        records.map((record) => record.source.stream),
        [STREAMS.auditIn, STREAMS.auditIn, STREAMS.auditIn],
      );
      const verification = verifyChain(records);
      assert.ok(verification.ok, JSON.stringify(verification));

      const head = (
        await (await stack.admin.kv(BUCKETS.auditHead)).get(HEAD_KEY)
      )?.json<ChainHead>();
      assert.equal(head?.sequence, 3);
      assert.equal(head?.hash, records[2]?.hash);
      assert.equal(head?.sourceSequence, records[2]?.source.sequence);
      assert.equal(head?.writer, 'writer-genesis');
    } finally {
      stopping.abort();
      await running;
    }
  });

  test('takeover rejects the frozen writer', async () => {
    const before = await readAuditRecords(stack.admin);
    let output = '';
    const writerA: ChildProcess = spawn(process.execPath, [AUDIT_MAIN], {
      env: {
        PATH: process.env.PATH,
        KEYTOWER_NATS_URL: stack.nats.url,
        KEYTOWER_NATS_USER: 'audit',
        KEYTOWER_NATS_PASSWORD: 'unused',
        KEYTOWER_LOG_LEVEL: 'info',
        KEYTOWER_AUDIT_LEASE_TTL_SECONDS: '2',
        KEYTOWER_AUDIT_STANDBY_POLL_MS: '200',
        KEYTOWER_CRASH_POINT: 'before-append',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    writerA.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    writerA.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise((resolve) => writerA.once('exit', resolve));
    const pid = writerA.pid ?? 0;

    const busB = await stack.connect('audit');
    const stoppingB = new AbortController();
    let runningB: Promise<void> | undefined;
    try {
      await waitFor('writer A to start', 20_000, () => output.includes('audit writer started'));
      await publishCommands(stack.admin, 1, 'frozen');
      await waitFor(
        'writer A to freeze before its append',
        10_000,
        () => processState(pid) === 'T',
      );

      runningB = runAuditWriter({
        bus: busB,
        holder: 'writer-b',
        leaseTtlSeconds: 2,
        standbyPollMs: 100,
        logger: stack.logger,
        signal: stoppingB.signal,
      });
      await publishCommands(stack.admin, 2, 'after-takeover');
      const expected = before.length + 3;
      await waitFor(
        `${expected} audit records`,
        30_000,
        async () => (await streamCount(stack.admin, STREAMS.audit)) === expected,
      );

      writerA.kill('SIGCONT');
      await waitFor('writer A to report its rejected append', 15_000, () =>
        /audit append rejected|already in the stream/.test(output),
      );
      assert.match(output, /audit append rejected: another writer appended/);

      const records = await readAuditRecords(stack.admin);
      assert.equal(records.length, expected, 'the frozen writer appended nothing');
      const verification = verifyChain(records);
      assert.ok(verification.ok, JSON.stringify(verification));
      assert.equal(
        new Set(records.map((record) => record.recordId)).size,
        records.length,
        'no record id twice',
      );
      assert.deepEqual(
        records.map((record) => record.source.sequence),
        Array.from({ length: expected }, (_, index) => index + 1),
        'each source message recorded exactly once, in order',
      );
      const head = (
        await (await stack.admin.kv(BUCKETS.auditHead)).get(HEAD_KEY)
      )?.json<ChainHead>();
      assert.equal(head?.writer, 'writer-b');
      assert.equal(head?.sequence, expected);
    } finally {
      writerA.kill('SIGCONT');
      writerA.kill('SIGTERM');
      await exited;
      stoppingB.abort();
      await runningB;
    }
  });

  // Runs last because it leaves a foreign message at the end of the record stream.
  test('foreign record stops the writer', async () => {
    const lines: string[] = [];
    const logger = createLogger({
      service: 'audit-test',
      level: 'error',
      destination: new Writable({
        write(chunk: Buffer, _encoding, callback) {
          lines.push(chunk.toString());
          callback();
        },
      }),
    });
    const bus = await stack.connect('audit');
    const stopping = new AbortController();
    const running = runAuditWriter({
      bus,
      holder: 'writer-c',
      leaseTtlSeconds: 2,
      standbyPollMs: 100,
      logger,
      signal: stopping.signal,
    });
    try {
      const initial = await streamCount(stack.admin, STREAMS.audit);
      await publishCommands(stack.admin, 1, 'before-foreign');
      await waitFor(
        'the record of the first command',
        10_000,
        async () => (await streamCount(stack.admin, STREAMS.audit)) === initial + 1,
      );
      const count = initial + 1;

      // Not a record the writer made: the admin user bypasses the writer.
      const foreign = { id: 'foreign-1', note: 'not an audit record' };
      await stack.admin.publish(subjects.auditRecord, foreign);
      await publishCommands(stack.admin, 1, 'after-foreign');
      await waitFor('the writer to refuse the foreign record', 15_000, () =>
        lines.some((line) => line.includes('is not a valid audit record')),
      );

      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.equal(
        await streamCount(stack.admin, STREAMS.audit),
        count + 1,
        'only the foreign message was added: nothing chained after it',
      );
    } finally {
      stopping.abort();
      await running;
    }
  });
});
