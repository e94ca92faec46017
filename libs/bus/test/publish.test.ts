import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  connectBus,
  deadLetterId,
  isPublishError,
  isWrongLastSequenceError,
  provision,
  publishDeadLetter,
} from '../src/index.ts';
import type { Bus } from '../src/index.ts';
import { natsTarget } from './support/nats-server.ts';
import type { NatsTarget } from './support/nats-server.ts';
import { memoryLogger, readDeadLetters, testEnvelope } from './support/helpers.ts';
import { workTopology } from './support/topology.ts';

describe('publish', () => {
  let target: NatsTarget;
  let bus: Bus;
  const work = workTopology('publish');

  before(async () => {
    target = await natsTarget();
    const { logger } = memoryLogger();
    bus = await connectBus({
      servers: target.url,
      user: target.user,
      password: target.password,
      name: 'publish-test',
      logger,
    });
    await provision(bus.connection, work.topology, { logger });
  });

  after(async () => {
    await work.cleanup(bus);
    await bus.close();
    await target.server?.destroy();
  });

  test('same message id stored once', async () => {
    const envelope = testEnvelope({ attempt: 1 }, 'c-1');

    const first = await bus.publish(work.subject('dedup'), envelope);
    const second = await bus.publish(work.subject('dedup'), envelope);

    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(second.seq, first.seq);
    assert.equal(second.stream, work.stream);
    const info = await bus.manager.streams.info(work.stream);
    assert.equal(info.state.messages, 1);
  });

  test('deliberate retry with new id is stored', async () => {
    const original = testEnvelope({ attempt: 1 });
    const retry = { ...testEnvelope({ attempt: 2 }), causationid: original.id };

    const first = await bus.publish(work.subject('retry'), original);
    const second = await bus.publish(work.subject('retry'), retry);

    assert.equal(second.duplicate, false);
    assert.ok(second.seq > first.seq);
  });

  test('expected last sequence mismatch raises typed error', async () => {
    const first = await bus.publish(work.subject('fence'), testEnvelope({ n: 1 }));
    const appended = await bus.publish(work.subject('fence'), testEnvelope({ n: 2 }), {
      expectLastSequence: first.seq,
    });
    assert.equal(appended.seq, first.seq + 1);

    const stale = testEnvelope({ n: 3 });
    await assert.rejects(
      bus.publish(work.subject('fence'), stale, { expectLastSequence: first.seq }),
      (error: unknown) => {
        assert.ok(isWrongLastSequenceError(error));
        assert.equal(error.code, 'wrong-last-sequence');
        assert.equal(error.subject, work.subject('fence'));
        assert.equal(error.messageId, stale.id);
        assert.equal(error.expectedLastSequence, first.seq);
        return true;
      },
    );
  });

  test('second dead letter of a position is a duplicate', async () => {
    const original = await bus.publish(work.subject('dead'), testEnvelope({ n: 1 }));
    const input = {
      stream: work.stream,
      durable: work.durable,
      subject: work.subject('dead'),
      headers: undefined,
      data: new TextEncoder().encode('{"id":"x"}'),
      streamSequence: original.seq,
      attempts: 3,
      lastError: 'RetryableError: provider call timed out',
      reason: 'handler-failed' as const,
    };

    const first = await publishDeadLetter(bus, input);
    const second = await publishDeadLetter(bus, { ...input, reason: 'max-deliveries' });

    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(second.seq, first.seq);
    assert.equal(
      (await readDeadLetters(bus, work.stream, work.durable))[0]?.id,
      deadLetterId(work.stream, original.seq),
    );
    assert.notEqual(
      deadLetterId(work.stream, original.seq),
      deadLetterId(work.stream, original.seq + 1),
    );
  });

  test('subject without stream raises publish error', async () => {
    const envelope = testEnvelope({});
    await assert.rejects(
      bus.publish('test.nostream.here', envelope, { timeoutMs: 1_000 }),
      (error: unknown) => {
        assert.ok(isPublishError(error));
        assert.match(error.message, /test\.nostream\.here/);
        assert.match(error.message, new RegExp(envelope.id));
        return true;
      },
    );
  });
});
