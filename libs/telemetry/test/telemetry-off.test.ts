import { test } from 'node:test';
import assert from 'node:assert/strict';
import { context, propagation, trace, TraceFlags } from '@opentelemetry/api';
import { startTelemetry } from '../src/index.ts';

test('without endpoint nothing records but context propagates', async () => {
  // OTEL_* variables must not switch exporting on behind the configuration's back.
  process.env.OTEL_TRACES_EXPORTER = 'otlp';
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = 'http://127.0.0.1:9';
  const telemetry = startTelemetry({ service: 'telemetry-off-test' });
  try {
    assert.equal(telemetry.exporting, false);
    const span = trace.getTracer('off').startSpan('not recorded');
    assert.equal(span.isRecording(), false);
    span.end();

    const parent = trace.wrapSpanContext({
      traceId: '11111111111111111111111111111111',
      spanId: '2222222222222222',
      traceFlags: TraceFlags.SAMPLED,
    });
    const carrier: Record<string, string> = {};
    context.with(trace.setSpan(context.active(), parent), () =>
      propagation.inject(context.active(), carrier),
    );
    assert.equal(carrier.traceparent, '00-11111111111111111111111111111111-2222222222222222-01');
  } finally {
    await telemetry.shutdown();
  }
});
