import { createHash } from 'node:crypto';
import { jetstream, JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import { JETSTREAM, SUBJECTS, SkiffError, destinationSubjectProblem, destinationUrlProblem, type Destinations } from '@skiff/contracts';
import type { InvocationRecord } from './records.js';

/** The final states an outcome event is sent for. */
export type OutcomeStatus = 'succeeded' | 'failed' | 'dead';
export const OUTCOME_STATUSES: readonly OutcomeStatus[] = ['succeeded', 'failed', 'dead'];

/** A CloudEvents 1.0 event in structured mode (https://github.com/cloudevents/spec, JSON format). */
export interface OutcomeEvent {
  specversion: '1.0';
  id: string;
  source: string;
  type: `dev.skiff.invocation.${OutcomeStatus}`;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  data: InvocationRecord;
}

export const OUTCOME_CONTENT_TYPE = 'application/cloudevents+json';

/** Outbox headers: where the event goes (its body is the event itself). */
export const OUTCOME_H = { destination: 'Skiff-Destination' } as const;

export type DestinationKind = 'subject' | 'url';

export function isOutcome(status: InvocationRecord['status']): status is OutcomeStatus {
  return (OUTCOME_STATUSES as readonly string[]).includes(status);
}

/**
 * The event's id: the same for the same outcome however often it is emitted (a scheduler that
 * stopped before its ack emits it again from the stored record), another for a later outcome of
 * the same invocation (redriven, it may die again), so receivers dedupe by it.
 */
export function outcomeEventId(record: InvocationRecord): string {
  return createHash('sha256').update(`${record.id}\n${record.status}\n${record.updatedAt}`).digest('hex').slice(0, 32);
}

/** The outcome of an invocation whose record is final, as the CloudEvent its destinations get. */
export function outcomeEvent(record: InvocationRecord): OutcomeEvent {
  if (!isOutcome(record.status)) throw new Error(`invocation ${record.id} is ${record.status}, not at an outcome`);
  return {
    specversion: '1.0',
    id: outcomeEventId(record),
    source: `/v1/functions/${record.fn}`,
    type: `dev.skiff.invocation.${record.status}`,
    subject: record.id,
    time: record.updatedAt,
    datacontenttype: 'application/json',
    data: record,
  };
}

/** A destination from an outbox message's header, checked again by the API's rules. */
export function destinationOf(kind: DestinationKind, headers: MsgHdrs | undefined): string {
  const value = headers?.get(OUTCOME_H.destination) ?? '';
  const problem = kind === 'subject' ? destinationSubjectProblem(value) : destinationUrlProblem(value);
  if (problem) throw new SkiffError('SKIFF_BAD_MESSAGE', `${OUTCOME_H.destination} "${value.slice(0, 64)}" ${problem}`);
  return value;
}

/**
 * The scheduler's outbox (stream SKIFF_OUTCOMES): an outcome event is stored once per
 * destination before the invocation is acknowledged, with the event id (and the kind) as its
 * message id, so emitting the same outcome again within the duplicate window stores nothing new.
 */
export class OutcomeOutbox {
  private constructor(private readonly js: JetStreamClient) {}

  static open(nc: NatsConnection): OutcomeOutbox {
    return new OutcomeOutbox(jetstream(nc, { timeout: 5000 }));
  }

  /** Resolves once JetStream has stored the event for every destination; nothing to do without any. */
  async put(event: OutcomeEvent, destinations: Destinations | undefined): Promise<void> {
    const body = new TextEncoder().encode(JSON.stringify(event));
    for (const kind of ['subject', 'url'] as const) {
      const to = destinations?.[kind];
      if (to === undefined) continue;
      const h = natsHeaders();
      h.set(OUTCOME_H.destination, to);
      try {
        await this.js.publish(SUBJECTS.outcome(kind, event.id), body, { headers: h, msgID: `${event.id}.${kind}`, expect: { streamName: JETSTREAM.outcomesStream } });
      } catch (err) {
        if (err instanceof JetStreamApiError && /maximum (messages|bytes)/i.test(err.message)) {
          throw new SkiffError('SKIFF_QUEUE_FULL', 'the outcome stream is full (SKIFF_OUTCOMES_MAX); the invocation stays queued until there is room', { cause: err });
        }
        throw err;
      }
    }
  }
}
