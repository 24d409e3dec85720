import { ROOT_CONTEXT, SpanStatusCode, propagation, trace, type Context, type Span } from '@opentelemetry/api';

/** W3C trace context as Skiff carries it between services (in an invocation's NATS headers). */
export interface TraceCarrier {
  traceparent?: string | undefined;
  tracestate?: string | undefined;
}

/** The context a carrier names (its span as the parent), or the root context. */
export function contextFrom(c: TraceCarrier | undefined): Context {
  return c?.traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent: c.traceparent, tracestate: c.tracestate }) : ROOT_CONTEXT;
}

/** The trace context of `ctx`'s span, empty when it has none (telemetry off). */
export function carrierOf(ctx: Context): TraceCarrier {
  const out: Record<string, string> = {};
  propagation.inject(ctx, out);
  return { ...(out.traceparent ? { traceparent: out.traceparent } : {}), ...(out.tracestate ? { tracestate: out.tracestate } : {}) };
}

/** `c` with `span` as its parent, so what runs on its behalf further on joins the trace below it. */
export function under<T extends TraceCarrier>(c: T, span: Span): T {
  const next = carrierOf(trace.setSpan(ROOT_CONTEXT, span));
  return next.traceparent ? { ...c, traceparent: next.traceparent, tracestate: next.tracestate ?? c.tracestate } : c;
}

/** Marks the span failed, with the error's Skiff code as `error.type` when it has one. */
export function failed(span: Span, err: unknown): void {
  const code = (err as { code?: unknown } | undefined)?.code;
  span.setStatus({ code: SpanStatusCode.ERROR, message: String((err as Error | undefined)?.message ?? err).slice(0, 512) });
  if (typeof code === 'string') span.setAttribute('error.type', code);
}
