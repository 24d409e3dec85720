import type { Invocation } from '@skiff/contracts';
import { ROOT_CONTEXT, SpanStatusCode, propagation, trace, tracer, type Attributes, type Span } from '@skiff/telemetry';

type Context = ReturnType<typeof trace.setSpan>;

/** The context an invocation carries (its traceparent), or none. */
export function invocationContext(inv: Pick<Invocation, 'traceparent' | 'tracestate'> | undefined): Context {
  return inv?.traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent: inv.traceparent, tracestate: inv.tracestate }) : ROOT_CONTEXT;
}

/** A span of the worker's, a child of the invocation's context (its own trace without one). */
export function startSpan(name: string, parent: Pick<Invocation, 'traceparent' | 'tracestate'> | undefined, attributes: Attributes = {}): Span {
  return tracer('@skiff/worker').startSpan(name, { attributes }, invocationContext(parent));
}

/** The invocation with `span` as its parent, so what runs on its behalf (the function included) joins the trace below it. */
export function under<T extends Pick<Invocation, 'traceparent' | 'tracestate'>>(inv: T, span: Span): T {
  const carrier: Record<string, string> = {};
  propagation.inject(trace.setSpan(ROOT_CONTEXT, span), carrier);
  return carrier.traceparent ? { ...inv, traceparent: carrier.traceparent, tracestate: carrier.tracestate ?? inv.tracestate } : inv;
}

/** Runs `work` in a child span of `parent`'s context, ended when it settles, marked failed when it throws. */
export async function inSpan<T>(name: string, parent: Pick<Invocation, 'traceparent' | 'tracestate'> | undefined, attributes: Attributes, work: (span: Span) => Promise<T>): Promise<T> {
  const span = startSpan(name, parent, attributes);
  try {
    return await work(span);
  } catch (err) {
    failed(span, err);
    throw err;
  } finally {
    span.end();
  }
}

export function failed(span: Span, err: unknown): void {
  const code = (err as { code?: unknown }).code;
  span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message?.slice(0, 512) });
  if (typeof code === 'string') span.setAttribute('error.type', code);
}
