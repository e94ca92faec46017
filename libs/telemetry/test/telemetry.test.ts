import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metrics, trace } from '@opentelemetry/api';
import { startTelemetry } from '../src/index.ts';

describe('startTelemetry', () => {
  test('exports spans and metrics to the endpoint', async () => {
    const received: { path: string; bytes: number }[] = [];
    const collector = createServer((request, response) => {
      let bytes = 0;
      request.on('data', (chunk: Buffer) => (bytes += chunk.length));
      request.on('end', () => {
        received.push({ path: request.url ?? '', bytes });
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const { port } = collector.address() as AddressInfo;

    const telemetry = startTelemetry({
      service: 'telemetry-test',
      otlpEndpoint: `http://127.0.0.1:${port}/`,
    });
    try {
      assert.equal(telemetry.exporting, true);
      const span = trace.getTracer('telemetry-test').startSpan('command decided');
      assert.equal(span.isRecording(), true);
      span.end();
      metrics.getMeter('telemetry-test').createCounter('commands_decided').add(1);
    } finally {
      await telemetry.shutdown();
      await new Promise<void>((resolve) => collector.close(() => resolve()));
    }

    assert.ok(received.some((request) => request.path === '/v1/traces' && request.bytes > 0));
    assert.ok(received.some((request) => request.path === '/v1/metrics' && request.bytes > 0));
  });
});
