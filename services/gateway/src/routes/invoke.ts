import type { Invocation } from '@skiff/contracts';
import { invocationFor } from '../invocation.js';
import type { Invoker } from '../invoker.js';
import type { Handlers } from '../openapi.js';
import type { Registry } from '../registry.js';
import { InputSchemas } from '../schemas.js';
import { getOrThrow } from './functions.js';

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const EMPTY = new Uint8Array(0);

/** A header value that can travel on NATS as is, or nothing. */
const printable = (v: string | undefined) => (v && v.length <= 256 && /^[\x20-\x7e]+$/.test(v) ? v : undefined);

/** The synchronous invoke path: registry lookup, one NATS request, the function's bytes back. */
export function invokeHandlers(registry: Registry, invoker: Invoker): Handlers {
  const schemas = new InputSchemas();
  return {
    invokeFunction: async ({ request, reply, params }) => {
      const fn = getOrThrow(registry, params.name!);
      const traceparent = request.headers.traceparent;
      const inv: Invocation = {
        ...invocationFor(fn, request.id),
        traceparent: typeof traceparent === 'string' && TRACEPARENT.test(traceparent) ? traceparent : undefined,
        contentType: printable(request.headers['content-type']),
      };
      const body = Buffer.isBuffer(request.body) ? request.body : EMPTY;
      schemas.check(fn, inv.contentType, body);
      const { body: out, contentType } = await invoker.invoke(inv, body);
      return reply
        .header('skiff-call-id', inv.callId)
        .type(contentType ?? 'application/octet-stream')
        .send(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
    },
  };
}
