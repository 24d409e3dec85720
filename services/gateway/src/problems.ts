import type { FastifyError, FastifyInstance } from 'fastify';
import { SkiffError, toProblem } from '@skiff/contracts';
import { type Logger } from '@skiff/service-kit';
import { trace } from '@skiff/telemetry';
import { isClientAbort } from './connections.js';
import { requestContext } from './tracing.js';

/** Fastify's own failures (body parsing, limits) mapped onto Skiff's stable codes. */
function fromFastify(err: FastifyError): SkiffError | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new SkiffError('SKIFF_BODY_TOO_LARGE', err.message, { cause: err });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new SkiffError('SKIFF_UNSUPPORTED_MEDIA_TYPE', err.message, { cause: err });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new SkiffError('SKIFF_VALIDATION_FAILED', `body: ${err.message}`, {
        cause: err,
        errors: [{ field: 'body', message: err.message }],
      });
  }
  if (err instanceof SyntaxError && err.statusCode === 400) {
    return new SkiffError('SKIFF_VALIDATION_FAILED', `body: ${err.message}`, { cause: err, errors: [{ field: 'body', message: err.message }] });
  }
  return undefined;
}

export function asSkiffError(err: unknown): SkiffError {
  if (err instanceof SkiffError) return err;
  const mapped = fromFastify(err as FastifyError);
  return mapped ?? new SkiffError('SKIFF_INTERNAL', 'internal error', { cause: err });
}

/** Every error leaves the gateway as application/problem+json with a stable code. */
export function installProblemHandlers(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err, request, reply) => {
    if (isClientAbort(err, request)) {
      // The client closed the connection in the middle of its body: nobody is left to answer.
      log.debug({ callId: request.id, address: request.ip, url: request.url }, 'client closed the connection before its body was complete');
      return;
    }
    const e = asSkiffError(err);
    const traceId = trace.getSpanContext(requestContext(request))?.traceId;
    // Refused before the body was read (a 401 from onRequest): close rather than read the rest.
    if (!request.raw.complete) void reply.header('connection', 'close');
    // A part that is away for a while (NATS, JetStream, every worker) is a warning, not a bug.
    if (e.status === 503 && e.retryable) log.warn({ callId: request.id, traceId, code: e.code }, e.message);
    else if (e.status >= 500 && e.code !== 'SKIFF_FN_FAILED') log.error({ err, callId: request.id, traceId, code: e.code }, e.message);
    // Clients may try again after a moment when Skiff is overloaded or a part is missing.
    if (e.retryable && (e.status === 429 || e.status === 503)) void reply.header('retry-after', '1');
    void reply.code(e.status).type('application/problem+json').send(toProblem(e, request.url));
  });
  app.setNotFoundHandler((request, reply) => {
    const e = new SkiffError('SKIFF_ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
    void reply.code(404).type('application/problem+json').send(toProblem(e, request.url));
  });
}
