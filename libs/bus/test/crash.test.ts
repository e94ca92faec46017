import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeadLetter } from '@keytower/contracts';
import { connectBus, deadLetterId, provision } from '../src/index.ts';
import type { Bus } from '../src/index.ts';
import { killChild, startConsumerChild } from './support/child.ts';
import type { ChildEvent, ConsumerChild } from './support/child.ts';
import { natsTarget } from './support/nats-server.ts';
import type { NatsTarget } from './support/nats-server.ts';
import { memoryLogger, readDeadLetters, sleep, testEnvelope, waitFor } from './support/helpers.ts';
import { workTopology } from './support/topology.ts';

describe('consumer crashes', () => {
  let target: NatsTarget;
  let bus: Bus;
  const { logger } = memoryLogger();

  before(async () => {
    target = await natsTarget();
    bus = await connectBus({
      servers: target.url,
      user: target.user,
      password: target.password,
      name: 'crash-test',
      logger,
    });
  });

  after(async () => {
    await bus.close();
    await target.server?.destroy();
  });

  test('crash on last attempt still dead-letters', async () => {
    const work = workTopology('crash', { ackWaitSeconds: 1, maxDeliver: 3 });
    await provision(bus.connection, work.topology, { logger });
    let child: ConsumerChild | undefined;
    try {
      child = await startConsumerChild({
        url: target.url,
        user: target.user,
        password: target.password,
        stream: work.stream,
        durable: work.durable,
        mode: 'hang-on-last',
        handlerMs: 0,
      });
      const envelope = testEnvelope({ n: 'crash' });
      const published = await bus.publish(work.subject('crash'), envelope);
      const running = child;
      await waitFor('last delivery started', () =>
        running.events.find((event) => event.event === 'start' && event.isLastAttempt),
      );
      await killChild(child);

      // A replica started after the crash dead-letters the message from the advisory.
      const replica = await bus.consume({
        stream: work.stream,
        durable: work.durable,
        handler: async () => {},
      });
      try {
        const [deadLetter] = await waitFor('dead letter from advisory', async () => {
          const found = await readDeadLetters(bus, work.stream, work.durable);
          return found.length > 0 ? found : undefined;
        });
        const data = deadLetter?.data as DeadLetter;
        assert.equal(deadLetter?.id, deadLetterId(work.stream, published.seq));
        assert.equal(data.reason, 'max-deliveries');
        assert.equal(data.attempts, 3);
        assert.equal(data.originalSequence, published.seq);
        assert.deepEqual(
          JSON.parse(Buffer.from(data.payloadBase64, 'base64').toString()),
          envelope,
        );
      } finally {
        await replica.stop();
      }
    } finally {
      if (child) await killChild(child);
      await work.cleanup(bus);
    }
  });

  test('killed replica message finishes once on the other', async (t) => {
    // Field case K08 scaled down: ack wait 3 s, handlers 2.8 s, two replicas, one killed.
    const work = workTopology('k08', { ackWaitSeconds: 3, maxDeliver: 5 });
    await provision(bus.connection, work.topology, { logger });
    const children: ConsumerChild[] = [];
    try {
      for (let n = 0; n < 2; n += 1) {
        children.push(
          await startConsumerChild({
            url: target.url,
            user: target.user,
            password: target.password,
            stream: work.stream,
            durable: work.durable,
            mode: 'slow',
            handlerMs: 2_800,
          }),
        );
      }
      const [victim, survivor] = children as [ConsumerChild, ConsumerChild];
      const ids: string[] = [];
      for (let n = 0; n < 4; n += 1) {
        const envelope = testEnvelope({ n });
        ids.push(envelope.id);
        await bus.publish(work.subject(n), envelope);
      }

      const victimStart = await waitFor('victim handler started', () =>
        victim.events.find((event) => event.event === 'start'),
      );
      await sleep(1_000);
      await killChild(victim);
      const killedAt = Date.now();
      const killedId = victimStart.id as string;

      const allEvents = (): ChildEvent[] => children.flatMap((child) => child.events);
      const finished = await waitFor(
        'every message done',
        () => {
          const done = allEvents().filter((event) => event.event === 'done');
          return ids.every((id) => done.some((event) => event.id === id)) ? done : undefined;
        },
        30_000,
      );

      for (const id of ids) {
        assert.equal(
          finished.filter((event) => event.id === id).length,
          1,
          `message ${id} finished more than once`,
        );
      }
      const rescued = finished.find((event) => event.id === killedId);
      const rescueStart = survivor.events.find(
        (event) => event.event === 'start' && event.id === killedId,
      );
      assert.equal(rescued?.pid, survivor.process.pid);
      const startDelay = (rescueStart?.at ?? Infinity) - killedAt;
      t.diagnostic(
        `killed message restarted ${startDelay} ms and finished ${(rescued?.at ?? NaN) - killedAt} ms after the kill`,
      );
      // Promptly: redelivered within one ack wait of the last in-progress ack, then started as
      // soon as the survivor finished the message it was already running.
      assert.ok(startDelay < 3_000 + 2_800 + 1_000, `restart took ${startDelay} ms`);

      // No message ran on two replicas at the same time: every start on the survivor of a
      // message the victim had started came after the victim died.
      for (const start of survivor.events.filter((event) => event.event === 'start')) {
        if (victim.events.some((event) => event.event === 'start' && event.id === start.id)) {
          assert.ok(start.at >= killedAt, `message ${start.id} ran on both replicas at once`);
        }
      }
      const victimStarts = victim.events.filter((event) => event.event === 'start');
      const survivorStarts = survivor.events.filter((event) => event.event === 'start');
      assert.equal(victimStarts.length + survivorStarts.length, ids.length + 1);
    } finally {
      for (const child of children) await killChild(child);
      await work.cleanup(bus);
    }
  });
});
