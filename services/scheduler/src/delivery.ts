import type { JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { SharedConsumer } from './shared-consumer.js';
import { NotStarted, type NodeCalls } from './node-calls.js';
import { JETSTREAM, SUBJECTS, SkiffError, decodeInvocation, decodeResult, encodeInvocation, isErrorCode, type Destinations, type Invocation } from '@skiff/contracts';
import { ASYNC_H, DeadLetters, InvocationRecords, MAX_RECORDED_RESULT_BYTES, OutcomeOutbox, backoffMs, clipDetail, decodeDestinations, isRetried, outcomeEvent, type AttemptRecord, type InvocationRecord } from '@skiff/events';
import { NodeDirectory } from '@skiff/placement';
import type { AsyncMetrics } from './async-metrics.js';
import type { Logger } from '@skiff/service-kit';
import { SpanKind, contextFrom, failed, tracer, under } from '@skiff/telemetry';

const TRACER = tracer('@skiff/scheduler');

export interface DeliveryOptions {
  /** Async invocations running at once across all schedulers (the consumer's max_ack_pending). */
  maxInFlight: number;
  /** How long JetStream waits for an acknowledgement before it delivers again; working() extends it. */
  ackWaitMs: number;
}

/** When nothing can run the invocation now, it is offered again after this (not an attempt). */
const NOT_PLACED_DELAY_MS = 1000;
/** A dead invocation the dead letters could not take is offered again this long after. */
const BURY_RETRY_MS = 60_000;

const now = () => new Date().toISOString();

/**
 * Runs async invocations: every scheduler pulls from the one durable consumer of SKIFF_ASYNC, so
 * each invocation goes to one of them. An invocation is acknowledged only once it has an
 * outcome (succeeded, failed, or dead and in the dead-letter stream); until then JetStream keeps
 * it, and a scheduler or worker that dies mid-attempt only delays it. A failure that may pass is
 * offered again after its backoff (nak with a delay); one that cannot is failed at once. An
 * outcome's event for the invocation's destinations is stored in the outbox before the ack, so
 * it is never lost between the two (the OutcomeSender sends it).
 */
export class AsyncDelivery {
  private readonly consumer: SharedConsumer;

  constructor(
    nc: NatsConnection,
    private readonly directory: NodeDirectory,
    private readonly calls: NodeCalls,
    private readonly records: InvocationRecords,
    private readonly deadLetters: DeadLetters,
    private readonly outbox: OutcomeOutbox,
    private readonly opts: DeliveryOptions,
    private readonly metrics: AsyncMetrics,
    private readonly log: Logger,
  ) {
    this.consumer = new SharedConsumer(
      nc,
      { stream: JETSTREAM.asyncStream, durable: JETSTREAM.asyncConsumer, filterSubject: 'skiff.async.>', ackWaitMs: opts.ackWaitMs, maxInFlight: opts.maxInFlight, what: 'async delivery', failedDelayMs: NOT_PLACED_DELAY_MS },
      (m) => this.deliver(m),
      log,
    );
  }

  start(): Promise<void> {
    return this.consumer.start();
  }

  stop(): Promise<void> {
    return this.consumer.stop();
  }

  private async deliver(m: JsMsg): Promise<void> {
    let queued: Invocation;
    let destinations: Destinations | undefined;
    try {
      queued = decodeInvocation(m.headers);
      destinations = decodeDestinations(m.headers);
      if (m.subject !== SUBJECTS.asyncInvocation(queued.callId)) throw new SkiffError('SKIFF_BAD_MESSAGE', `invocation ${queued.callId} arrived on ${m.subject}`);
    } catch (err) {
      this.log.warn({ err, subject: m.subject }, 'async message rejected');
      m.term();
      return;
    }
    const timeoutMs = Number(m.headers?.get(ASYNC_H.timeoutMs)) || 30_000;
    const acceptedAt = new Date(m.info.timestampNanos / 1e6);
    // A scheduled tick may have been recorded skipped by a scheduler that found it missed just as
    // another fired it late: the record wins, so the tick's outcome is the one reported.
    const previous = m.info.deliveryCount > 1 || queued.event?.subject === SUBJECTS.scheduleEvent(queued.fn) ? await this.records.get(queued.callId) : undefined;
    const record: InvocationRecord = previous ?? {
      id: queued.callId,
      fn: queued.fn,
      fnVersion: queued.fnVersion,
      status: 'queued',
      acceptedAt: acceptedAt.toISOString(),
      updatedAt: now(),
      ...(queued.idempotencyKey ? { idempotencyKey: queued.idempotencyKey } : {}),
      attempts: [],
    };
    if (record.status === 'skipped') {
      m.ack(); // the tick was recorded missed (catchUp off) before this copy came
      return;
    }
    if (record.status === 'succeeded' || record.status === 'failed' || record.status === 'dead') {
      // An outcome was recorded before a crash (or a failed outbox write) kept the ack from
      // JetStream: its event again (the outbox drops a copy it has), then the ack.
      await this.emit(record, destinations);
      m.ack();
      return;
    }
    const settings = queued.settings;
    const interrupted = record.status === 'running' ? record.attempts.at(-1) : undefined;
    if (interrupted && !interrupted.endedAt) {
      // Offered again while recorded running: the attempt was cut off before its outcome (its
      // scheduler stopped, or JetStream failed under it). It counts; it may have run.
      interrupted.endedAt = now();
      interrupted.error = { code: 'SKIFF_WORKER_LOST', detail: 'the attempt was interrupted before it had an outcome (its scheduler stopped, or JetStream failed under it)' };
      this.metrics.attempt(queued.fn, 'interrupted');
      if (interrupted.attempt >= settings.asyncAttempts) return this.bury(m, record, interrupted.error, destinations);
    }
    // Out of attempts already, kept queued while the dead letters were full: bury it now.
    if (record.status === 'queued' && record.attempts.length >= settings.asyncAttempts) return this.bury(m, record, record.attempts.at(-1)?.error ?? { code: 'SKIFF_INTERNAL', detail: 'out of attempts' }, destinations);
    if (Date.now() - acceptedAt.getTime() > settings.asyncMaxAgeMs) {
      return this.bury(m, record, { code: 'SKIFF_EVENT_TOO_OLD', detail: `not done ${settings.asyncMaxAgeMs} ms after it was accepted` }, destinations);
    }
    const target = { fn: queued.fn, fnVersion: queued.fnVersion, image: queued.image };
    const node = this.directory.pick(target);
    if (!node) {
      m.nak(NOT_PLACED_DELAY_MS); // no live node with a slot: not an attempt
      return;
    }
    const attempt: AttemptRecord = { attempt: record.attempts.length + 1, startedAt: now(), nodeId: node.nodeId };
    record.attempts.push(attempt);
    record.status = 'running';
    record.updatedAt = attempt.startedAt;
    delete record.nextAttemptAt;
    await this.records.put(record);

    // The attempt's span, in the trace of whatever queued the invocation; the worker's is below it.
    const span = TRACER.startSpan('async attempt', { kind: SpanKind.PRODUCER, attributes: { 'faas.name': queued.fn, 'faas.version': String(queued.fnVersion), 'faas.invocation_id': queued.callId, 'skiff.attempt': attempt.attempt, 'skiff.node.id': node.nodeId } }, contextFrom(queued));
    const inv: Invocation = under({ ...queued, deadline: Date.now() + timeoutMs, attempt: attempt.attempt }, span);
    this.directory.placed(node.nodeId, target);
    const working = setInterval(() => m.working(), Math.max(1000, this.opts.ackWaitMs / 3));
    let outcome: { ok: true; body: Uint8Array; contentType: string | undefined } | { ok: false; error: SkiffError };
    try {
      const reply = await this.calls.call(node.nodeId, encodeInvocation(inv), m.data, timeoutMs);
      const result = decodeResult(reply.headers, reply.data);
      outcome = result.ok ? { ok: true, body: result.body, contentType: result.contentType } : { ok: false, error: result.error };
    } catch (err) {
      if (err instanceof NotStarted) {
        clearInterval(working);
        this.directory.forget(node.nodeId, 'nothing listens on its subject');
        record.attempts.pop();
        record.status = 'queued';
        span.setAttribute('skiff.attempt.started', false).end();
        await this.records.put(record);
        m.nak(0); // the call never started: offered again at once, to another node
        return;
      }
      outcome = { ok: false, error: err instanceof SkiffError ? err : new SkiffError('SKIFF_INTERNAL', 'the attempt failed', { cause: err }) };
    } finally {
      clearInterval(working);
    }
    if (!outcome.ok) failed(span, outcome.error);
    span.end();
    attempt.endedAt = now();
    record.updatedAt = attempt.endedAt;
    if (outcome.ok) {
      record.status = 'succeeded';
      record.result = {
        ...(outcome.contentType ? { contentType: outcome.contentType } : {}),
        bytes: outcome.body.length,
        ...(outcome.body.length <= MAX_RECORDED_RESULT_BYTES ? { body: Buffer.from(outcome.body).toString('base64') } : {}),
      };
      await this.records.put(record);
      await this.emit(record, destinations);
      m.ack();
      this.metrics.attempt(record.fn, 'succeeded');
      return;
    }
    const error = { code: outcome.error.code, detail: clipDetail(outcome.error.message) };
    attempt.error = error;
    if (!isErrorCode(error.code) || !isRetried(error.code)) {
      record.status = 'failed';
      record.error = error;
      await this.records.put(record);
      await this.emit(record, destinations);
      m.term();
      this.metrics.attempt(record.fn, 'failed');
      return;
    }
    if (attempt.attempt >= settings.asyncAttempts) {
      this.metrics.attempt(record.fn, 'exhausted');
      return this.bury(m, record, error, destinations);
    }
    const delay = backoffMs(attempt.attempt + 1, settings.asyncBackoffMs, settings.asyncBackoffCapMs);
    record.status = 'queued';
    record.nextAttemptAt = new Date(Date.now() + delay).toISOString();
    await this.records.put(record);
    m.nak(delay);
    this.metrics.attempt(record.fn, 'retried');
  }

  /** Moves the invocation to the dead letters; if they are full, it stays queued and is offered again later. */
  /** Stores the outcome's event for each destination; a failure leaves the invocation unacknowledged. */
  private async emit(record: InvocationRecord, destinations: Destinations | undefined): Promise<void> {
    if (destinations) await this.outbox.put(outcomeEvent(record), destinations);
  }

  private async bury(m: JsMsg, record: InvocationRecord, error: { code: string; detail: string }, destinations: Destinations | undefined): Promise<void> {
    try {
      await this.deadLetters.add({ id: record.id, headers: m.headers!, body: m.data, attempts: record.attempts.length, acceptedAt: new Date(record.acceptedAt), error });
    } catch (err) {
      // Full (SKIFF_DEAD_LETTERS_MAX) or unreachable: it stays queued, nothing is dropped.
      this.log.error({ err: (err as Error).message, id: record.id }, 'cannot keep the dead letter; the invocation stays queued');
      this.metrics.deadLetterRefused(record.fn);
      record.status = 'queued';
      record.updatedAt = now();
      record.nextAttemptAt = new Date(Date.now() + BURY_RETRY_MS).toISOString();
      record.error = { code: 'SKIFF_QUEUE_FULL', detail: `dead (${error.code}), but the dead letters cannot take it: ${(err as Error).message}; kept queued` };
      await this.records.put(record);
      m.nak(BURY_RETRY_MS);
      return;
    }
    record.status = 'dead';
    record.error = error;
    delete record.nextAttemptAt;
    record.updatedAt = now();
    await this.records.put(record);
    await this.emit(record, destinations);
    m.ack();
    this.metrics.dead(record.fn);
    this.log.warn({ id: record.id, fn: record.fn, attempts: record.attempts.length, code: error.code }, 'async invocation dead');
  }
}
