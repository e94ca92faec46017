import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';

export interface TelemetryOptions {
  service: string;
  /**
   * Base URL of an OTLP/HTTP collector, for example `http://127.0.0.1:4318`. Traces go to
   * `<endpoint>/v1/traces` and metrics to `<endpoint>/v1/metrics`.
   */
  otlpEndpoint?: string;
  /** Interval between metric exports, in milliseconds. */
  metricExportIntervalMs?: number;
}

export interface Telemetry {
  /** Whether spans and metrics leave the process. */
  exporting: boolean;
  /** Flushes pending spans and metrics and unregisters nothing else; safe to call twice. */
  shutdown(): Promise<void>;
}

function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}${path}`;
}

/**
 * Starts OpenTelemetry for one process. The context manager and the W3C trace-context
 * propagator are always registered, so trace ids travel in message headers even when
 * nothing is exported. Spans and metrics are exported over OTLP/HTTP only when
 * `otlpEndpoint` is set. Without it no tracer or meter provider is registered, so the
 * API stays a no-op and the process never connects to a collector, whatever the
 * `OTEL_*` environment variables contain.
 */
export function startTelemetry(options: TelemetryOptions): Telemetry {
  const endpoint = options.otlpEndpoint;
  const exporting = endpoint !== undefined && endpoint !== '';

  const sdk = exporting
    ? new NodeSDK({
        serviceName: options.service,
        autoDetectResources: false,
        traceExporter: new OTLPTraceExporter({ url: joinUrl(endpoint, '/v1/traces') }),
        metricReaders: [
          new PeriodicExportingMetricReader({
            exporter: new OTLPMetricExporter({ url: joinUrl(endpoint, '/v1/metrics') }),
            exportIntervalMillis: options.metricExportIntervalMs ?? 60_000,
          }),
        ],
        logRecordProcessors: [],
        instrumentations: [],
      })
    : new NodeSDK({
        serviceName: options.service,
        autoDetectResources: false,
        spanProcessors: [],
        metricReaders: [],
        logRecordProcessors: [],
        instrumentations: [],
      });
  sdk.start();

  let stopped: Promise<void> | undefined;
  return {
    exporting,
    shutdown() {
      stopped ??= sdk.shutdown();
      return stopped;
    },
  };
}
