import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { context, trace, TraceFlags } from '@opentelemetry/api';
import { createLogger, startTelemetry, withIds } from '../src/index.ts';

function capture(): {
  destination: Writable;
  lines: () => Record<string, unknown>[];
  text: () => string;
} {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const text = () => chunks.join('');
  return {
    destination,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('createLogger', () => {
  test('every line carries the service', () => {
    const output = capture();
    const logger = createLogger({
      service: 'policy',
      level: 'debug',
      destination: output.destination,
    });

    logger.info('service started');
    logger.debug({ count: 2 }, 'batch read');

    const lines = output.lines();
    assert.equal(lines.length, 2);
    for (const line of lines) {
      assert.equal(line.service, 'policy');
    }
    assert.equal(lines[1]?.count, 2);
  });

  test('child logger binds ids', () => {
    const output = capture();
    const logger = createLogger({ service: 'connector-hsm', destination: output.destination });
    const child = withIds(logger, {
      correlationId: 'corr-1',
      commandId: '01JCMD',
      keyId: 'kt_0123456789abcdef01234567',
      traceId: undefined,
    });

    child.info('operation started');

    const [line] = output.lines();
    assert.equal(line?.correlationId, 'corr-1');
    assert.equal(line?.commandId, '01JCMD');
    assert.equal(line?.keyId, 'kt_0123456789abcdef01234567');
    assert.equal('traceId' in (line ?? {}), false);
  });

  test('secrets never reach the output', () => {
    const output = capture();
    const logger = createLogger({ service: 'connector-hsm', destination: output.destination });
    const secrets = {
      password: 'nats-password-value',
      pin: '987654',
      secret: 'shared-secret-value',
      keyMaterial: 'AAAAkeymaterialAAAA',
      plaintext: 'attack at dawn',
      token: 'bearer-token-value',
    };

    logger.info(secrets, 'top level');
    logger.info({ config: secrets }, 'nested');
    logger.child({ session: { pin: '987654' } }).warn('bound');

    const text = output.text();
    for (const value of Object.values(secrets)) {
      assert.ok(!text.includes(value), `log output contains ${value}`);
    }
    const [top, nested] = output.lines();
    assert.equal(top?.pin, '<redacted>');
    assert.equal((nested?.config as Record<string, unknown>).keyMaterial, '<redacted>');
  });

  test('active trace id is on each line', () => {
    const telemetry = startTelemetry({ service: 'logger-test' });
    try {
      const output = capture();
      const logger = createLogger({ service: 'policy', destination: output.destination });
      const span = trace.wrapSpanContext({
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: 'b7ad6b7169203331',
        traceFlags: TraceFlags.SAMPLED,
      });

      context.with(trace.setSpan(context.active(), span), () => logger.info('inside span'));
      logger.info('outside span');

      const [inside, outside] = output.lines();
      assert.equal(inside?.traceId, '0af7651916cd43dd8448eb211c80319c');
      assert.equal(inside?.spanId, 'b7ad6b7169203331');
      assert.equal(outside?.traceId, undefined);
    } finally {
      void telemetry.shutdown();
    }
  });
});
