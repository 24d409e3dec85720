import { createHash } from 'node:crypto';
import { jetstream, JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import type { MsgHdrs, NatsConnection } from '@nats-io/nats-core';
import { JETSTREAM, SUBJECTS, SkiffError, destinationsSchema, encodeInvocation, newCallId, type Destinations, type Invocation } from '@skiff/contracts';

/** Async-only headers, beside the invocation's own. */
export const ASYNC_H = {
  /** The function version's timeoutMs: each attempt's deadline is counted from its start. */
  timeoutMs: 'Skiff-Timeout-Ms',
  /** Where the outcome goes (JSON Destinations), as the function had them at accept or redrive. */
  destinations: 'Skiff-Destinations',
} as const;

/** A subject of 256 and a URL of 2048 characters fit with room to spare. */
const MAX_DESTINATIONS_HEADER = 4096;

/**
 * The queued message's destinations, checked by the API's rules; undefined when it has none.
 * Throws a SKIFF_BAD_MESSAGE naming the header when what is there does not fit.
 */
export function decodeDestinations(headers: MsgHdrs | undefined): Destinations | undefined {
  const text = headers?.get(ASYNC_H.destinations);
  if (!text) return undefined;
  let parsed;
  try {
    parsed = text.length <= MAX_DESTINATIONS_HEADER ? destinationsSchema.safeParse(JSON.parse(text)) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!parsed?.success) throw new SkiffError('SKIFF_BAD_MESSAGE', `${ASYNC_H.destinations} is not valid destinations`, { errors: [{ field: ASYNC_H.destinations, message: 'must be a JSON object with a valid subject and/or url' }] });
  return parsed.data;
}

/** How long the gateway waits for JetStream to confirm it stored an invocation. */
const PUB_ACK_TIMEOUT_MS = 5000;

/**
 * The invocation id: the function's name and 32 hex digits, random, or with an Idempotency-Key
 * derived from it, so a second accept with the same key for the same function is the same
 * invocation (JetStream drops the duplicate within its window; the record answers beyond it).
 */
export function invocationId(fn: string, idempotencyKey?: string): string {
  const tail = idempotencyKey === undefined ? newCallId() : createHash('sha256').update(`${fn}\n${idempotencyKey}`).digest('hex').slice(0, 32);
  return `${fn}.${tail}`;
}

export interface Accepted {
  /** The stream already had it (same Idempotency-Key within the duplicate window). */
  duplicate: boolean;
}

/** The gateway's side of the async queue: an invocation is accepted once JetStream has stored it. */
export class AsyncQueue {
  private readonly js: JetStreamClient;

  constructor(nc: NatsConnection) {
    this.js = jetstream(nc, { timeout: PUB_ACK_TIMEOUT_MS });
  }

  /**
   * Stores the invocation (its callId is the invocation id) on SKIFF_ASYNC; JetStream drops a
   * second message with the same `msgID` within its duplicate window. Resolves after the
   * PubAck; rejects with a retryable SkiffError when JetStream cannot take it, so the caller
   * never hears "accepted" for work that may be lost. `destinations` travel with it, so the
   * scheduler that runs it sends the outcome there without reading the registry.
   */
  async enqueue(inv: Invocation, timeoutMs: number, body: Uint8Array, msgID: string = inv.callId, destinations?: Destinations): Promise<Accepted> {
    const headers = encodeInvocation({ ...inv, deadline: 0 });
    (headers as MsgHdrs).append(ASYNC_H.timeoutMs, String(timeoutMs));
    if (destinations) (headers as MsgHdrs).append(ASYNC_H.destinations, JSON.stringify({ subject: destinations.subject, url: destinations.url }));
    try {
      const ack = await this.js.publish(SUBJECTS.asyncInvocation(inv.callId), body, {
        headers,
        msgID,
        expect: { streamName: JETSTREAM.asyncStream },
        retries: 0,
      });
      return { duplicate: ack.duplicate };
    } catch (err) {
      throw queueFailure(err);
    }
  }
}

function queueFailure(err: unknown): SkiffError {
  const message = (err as Error).message ?? String(err);
  if (err instanceof JetStreamApiError && /maximum (messages|bytes)/i.test(message)) {
    return new SkiffError('SKIFF_QUEUE_FULL', 'the async queue is full; nothing was accepted, try again later', { cause: err });
  }
  return new SkiffError('SKIFF_QUEUE_UNAVAILABLE', `JetStream did not store the invocation (${message}); nothing was accepted, try again shortly`, { cause: err });
}
