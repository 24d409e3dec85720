import type { MsgHdrs } from '@nats-io/transport-node';
import type { TraceCarrier } from '@skiff/telemetry';

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The trace context a publisher put on its event message, when it is well formed (a stranger may send anything). */
export function publisherTrace(headers: MsgHdrs | undefined): TraceCarrier | undefined {
  const traceparent = headers?.get('traceparent');
  if (!traceparent || !TRACEPARENT.test(traceparent)) return undefined;
  const tracestate = headers?.get('tracestate');
  return { traceparent, ...(tracestate && tracestate.length <= 512 && /^[\x20-\x7e]+$/.test(tracestate) ? { tracestate } : {}) };
}
