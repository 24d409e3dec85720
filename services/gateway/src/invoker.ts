import { RequestError, TimeoutError } from '@nats-io/transport-node';
import {
  SUBJECTS,
  SkiffError,
  decodeResult,
  encodeInvocation,
  remainingMs,
  type Invocation,
} from '@skiff/contracts';
import type { Messaging } from './messaging.js';

/**
 * Sends one invocation to the schedulers and waits for the result, which the worker sends
 * straight to this request's inbox. The only timeout is what is left of the deadline.
 */
export async function invoke(messaging: Messaging, inv: Invocation, body: Uint8Array): Promise<{ body: Uint8Array; contentType: string | undefined }> {
  if (!messaging.connected) throw new SkiffError('SKIFF_NATS_UNAVAILABLE', 'the gateway is not connected to NATS; try again shortly');
  const timeout = remainingMs(inv.deadline);
  if (timeout === 0) throw new SkiffError('SKIFF_DEADLINE_EXCEEDED', 'the deadline passed before the invocation was sent');
  let reply;
  try {
    reply = await messaging.nc.request(SUBJECTS.invoke, body, { timeout, headers: encodeInvocation(inv) });
  } catch (err) {
    throw requestFailure(err, inv);
  }
  const result = decodeResult(reply.headers, reply.data);
  if (result.callId !== inv.callId) {
    throw new SkiffError('SKIFF_BAD_MESSAGE', `result for call ${result.callId} arrived for call ${inv.callId}`);
  }
  if (!result.ok) throw result.error;
  return { body: result.body, contentType: result.contentType };
}

function requestFailure(err: unknown, inv: Invocation): SkiffError {
  if (err instanceof RequestError && err.isNoResponders()) {
    return new SkiffError('SKIFF_NO_SCHEDULER', 'no scheduler is listening for invocations', { cause: err });
  }
  if (err instanceof TimeoutError || (err instanceof RequestError && err.cause instanceof TimeoutError)) {
    return new SkiffError('SKIFF_DEADLINE_EXCEEDED', `function "${inv.fn}" did not answer before its deadline`, { cause: err });
  }
  return new SkiffError('SKIFF_NATS_UNAVAILABLE', `could not send the invocation: ${(err as Error).message}`, { cause: err });
}
