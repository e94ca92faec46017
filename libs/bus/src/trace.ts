import { context, propagation } from '@opentelemetry/api';
import type { Context, TextMapGetter, TextMapSetter } from '@opentelemetry/api';
import type { MsgHdrs } from '@nats-io/transport-node';

const headerSetter: TextMapSetter<MsgHdrs> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

/**
 * Reads headers case-insensitively: W3C names are lowercase, but a NATS header keeps the
 * case its publisher used.
 */
const headerGetter: TextMapGetter<MsgHdrs | undefined> = {
  keys(carrier) {
    return carrier === undefined ? [] : carrier.keys();
  },
  get(carrier, key) {
    if (carrier === undefined) {
      return undefined;
    }
    const match = carrier.keys().find((name) => name.toLowerCase() === key.toLowerCase());
    return match === undefined ? undefined : carrier.get(match);
  },
};

/**
 * Writes the W3C `traceparent` and `tracestate` of `ctx` (the active context by default)
 * into NATS message headers, through the globally registered propagator. Writes nothing
 * when no propagator is registered or no span is active.
 */
export function injectTraceContext(headers: MsgHdrs, ctx: Context = context.active()): MsgHdrs {
  propagation.inject(ctx, headers, headerSetter);
  return headers;
}

/**
 * Reads the trace context from NATS message headers into a context derived from the
 * active one. Run the handler in it with `context.with(ctx, fn)`.
 */
export function extractTraceContext(headers: MsgHdrs | undefined): Context {
  return propagation.extract(context.active(), headers, headerGetter);
}
