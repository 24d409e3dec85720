import { IDEMPOTENCY_KEY_PATTERN, SkiffError, TRACEPARENT_PATTERN, type Invocation } from '@skiff/contracts';
import { invocationId } from '@skiff/events';
import type { AsyncInvocations } from '../async-invocations.js';
import { invocationFor } from '../invocation.js';
import type { Invoker } from '../invoker.js';
import type { Handlers } from '../openapi.js';
import type { Registry } from '../registry.js';
import { InputSchemas } from '../schemas.js';
import { carrierOf } from '@skiff/telemetry';
import { requestContext } from '../tracing.js';
import { getOrThrow } from './functions.js';

const EMPTY = new Uint8Array(0);

/** A header value that can travel on NATS as is, or nothing. */
const printable = (v: string | undefined) => (v && v.length <= 256 && /^[\x20-\x7e]+$/.test(v) ? v : undefined);

/** Whether a Prefer header (RFC 7240) asks for respond-async. */
const prefersAsync = (prefer: string | string[] | undefined) =>
  [prefer ?? []].flat().some((v) => v.split(',').some((p) => p.split(';')[0]!.trim().toLowerCase() === 'respond-async'));

/**
 * The invoke path: registry lookup and the input check, then either one NATS request and the
 * function's bytes back, or (Prefer: respond-async) the invocation stored on JetStream and 202.
 */
export function invokeHandlers(registry: Registry, invoker: Invoker, invocations: AsyncInvocations): Handlers {
  const schemas = new InputSchemas();
  return {
    invokeFunction: async ({ request, reply, params }) => {
      const fn = getOrThrow(registry, params.name!);
      // The request's span goes with the invocation; with telemetry off, the caller's traceparent as it came.
      const traced = carrierOf(requestContext(request));
      const traceparent = request.headers.traceparent;
      const inv: Invocation = {
        ...invocationFor(fn, request.id),
        traceparent: traced.traceparent ?? (typeof traceparent === 'string' && TRACEPARENT_PATTERN.test(traceparent) ? traceparent : undefined),
        tracestate: traced.tracestate,
        contentType: printable(request.headers['content-type']),
      };
      const body = Buffer.isBuffer(request.body) ? request.body : EMPTY;
      schemas.check(fn, inv.contentType, body);
      if (prefersAsync(request.headers.prefer)) {
        const key = request.headers['idempotency-key'];
        if (key !== undefined && (typeof key !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(key))) {
          throw new SkiffError('SKIFF_VALIDATION_FAILED', 'Idempotency-Key must be one header of 1-256 printable ASCII characters', { errors: [{ field: 'header.idempotency-key', message: 'must be 1-256 printable ASCII characters' }] });
        }
        const id = invocationId(fn.name, key);
        const record = await invocations.accept({ ...inv, callId: id, ...(key ? { idempotencyKey: key } : {}) }, fn.timeoutMs, body, fn.destinations);
        return reply.code(202).header('location', `/v1/invocations/${record.id}`).header('preference-applied', 'respond-async').send(record);
      }
      const { body: out, contentType } = await invoker.invoke(inv, body);
      return reply
        .header('skiff-call-id', inv.callId)
        .type(contentType ?? 'application/octet-stream')
        .send(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
    },
  };
}
