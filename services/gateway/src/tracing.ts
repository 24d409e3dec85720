import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, propagation, trace, tracer, type Context, type Span } from '@skiff/telemetry';

const spans = new WeakMap<FastifyRequest, { span: Span; ctx: Context }>();
const headerGetter = {
  keys: (h: FastifyRequest['headers']) => Object.keys(h),
  get: (h: FastifyRequest['headers'], key: string) => h[key],
};

/**
 * One server span per request (`GET /v1/functions/:name`), a child of the caller's trace when it
 * sent a valid `traceparent`. The response names the trace in `traceresponse` (W3C Trace Context
 * level 2), so a caller can find it; routes that go on to other services take the span as
 * their parent (`requestContext`).
 */
export function traceRequests(app: FastifyInstance): void {
  const t = tracer('@skiff/gateway');
  // Callback hooks: no promise per request on the hot path.
  app.addHook('onRequest', (request, reply, done) => {
    const parent = propagation.extract(ROOT_CONTEXT, request.headers, headerGetter);
    const route = request.routeOptions.url;
    const span = t.startSpan(
      route ? `${request.method} ${route}` : request.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': request.method,
          ...(route ? { 'http.route': route } : {}),
          'url.path': request.url.split('?')[0]!.slice(0, 2048),
          'skiff.call_id': request.id,
        },
      },
      parent,
    );
    spans.set(request, { span, ctx: trace.setSpan(parent, span) });
    const sc = span.spanContext();
    if (trace.isSpanContextValid(sc)) void reply.header('traceresponse', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`);
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    spans.get(request)?.span.setStatus({ code: SpanStatusCode.ERROR, message: 'the client closed the connection' }).end();
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const entry = spans.get(request);
    if (entry) {
      const status = reply.statusCode;
      entry.span.setAttribute('http.response.status_code', status);
      if (status >= 500) entry.span.setStatus({ code: SpanStatusCode.ERROR }).setAttribute('error.type', String(status));
      entry.span.end();
    }
    done();
  });
}

/** The context of the request's span, for what the route does on its behalf. */
export function requestContext(request: FastifyRequest): Context {
  return spans.get(request)?.ctx ?? ROOT_CONTEXT;
}
