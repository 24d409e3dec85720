import { contextFrom, failed, tracer, type Attributes, type Span, type TraceCarrier } from '@skiff/telemetry';

const TRACER = tracer('@skiff/worker');

/** A span of the worker's, a child of the carrier's context (its own trace without one). */
export function startSpan(name: string, parent: TraceCarrier | undefined, attributes: Attributes = {}): Span {
  return TRACER.startSpan(name, { attributes }, contextFrom(parent));
}

/** Runs `work` in a child span of `parent`'s context, ended when it settles, marked failed when it throws. */
export async function inSpan<T>(name: string, parent: TraceCarrier | undefined, attributes: Attributes, work: (span: Span) => Promise<T>): Promise<T> {
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
