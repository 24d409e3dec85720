import type { MsgHdrs } from '@nats-io/transport-node';
import { TRACEPARENT_PATTERN } from '@skiff/contracts';
import type { TraceCarrier } from '@skiff/telemetry';


/** The trace context a publisher put on its event message, when it is well formed (a stranger may send anything). */
export function publisherTrace(headers: MsgHdrs | undefined): TraceCarrier | undefined {
  const traceparent = headers?.get('traceparent');
  if (!traceparent || !TRACEPARENT_PATTERN.test(traceparent)) return undefined;
  const tracestate = headers?.get('tracestate');
  return { traceparent, ...(tracestate && tracestate.length <= 512 && /^[\x20-\x7e]+$/.test(tracestate) ? { tracestate } : {}) };
}
