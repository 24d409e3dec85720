import { jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { NotStarted, type NodeCalls } from './node-calls.js';
import { JETSTREAM, SUBJECTS, SkiffError, decodeInvocation, decodeResult, encodeInvocation, isErrorCode, type Invocation } from '@skiff/contracts';
import { ASYNC_H, DeadLetters, InvocationRecords, MAX_RECORDED_RESULT_BYTES, backoffMs, clipDetail, isRetried, type AttemptRecord, type InvocationRecord } from '@skiff/events';
import { NodeDirectory } from '@skiff/placement';
import type { Logger } from '@skiff/service-kit';

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
/** How long one pull for invocations lasts; see start(). */
const PULL_EXPIRES_MS = 5000;
/** After the consumer went away, it is set up again this often until that works. */
const RESTART_MS = 1000;

const now = () => new Date().toISOString();

/**
 * Runs async invocations: every scheduler pulls from the one durable consumer of SKIFF_ASYNC, so
 * each invocation goes to one of them. An invocation is acknowledged only once it has an
 * outcome (succeeded, failed, or dead and in the dead-letter stream); until then JetStream keeps
 * it, and a scheduler or worker that dies mid-attempt only delays it. A failure that may pass is
 * offered again after its backoff (nak with a delay); one that cannot is failed at once.
 */
export class AsyncDelivery {
  private messages: ConsumerMessages | undefined;
  private restart: NodeJS.Timeout | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly directory: NodeDirectory,
    private readonly calls: NodeCalls,
    private readonly records: InvocationRecords,
    private readonly deadLetters: DeadLetters,
    private readonly opts: DeliveryOptions,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const jsm = await jetstreamManager(this.nc, { timeout: 5000 });
    const config = {
      durable_name: JETSTREAM.asyncConsumer,
      ack_policy: 'explicit' as const,
      ack_wait: nanos(this.opts.ackWaitMs),
      max_deliver: -1,
      max_ack_pending: this.opts.maxInFlight,
      filter_subject: 'skiff.async.>',
    };
    try {
      await jsm.consumers.add(JETSTREAM.asyncStream, config);
    } catch (err) {
      if (!/already in use|already exists/i.test((err as Error).message)) throw err;
      await jsm.consumers.update(JETSTREAM.asyncStream, JETSTREAM.asyncConsumer, { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending });
    }
    const consumer = await jetstream(this.nc).consumers.get(JETSTREAM.asyncStream, JETSTREAM.asyncConsumer);
    // Short pulls: after NATS or JetStream comes back, a pull lost with it is noticed (missed
    // heartbeats, half of `expires`) and made again within seconds.
    const messages = await consumer.consume({ max_messages: Math.min(this.opts.maxInFlight, 256), expires: PULL_EXPIRES_MS });
    this.messages = messages;
    this.loop = (async () => {
      for await (const m of messages) {
        const job = this.deliver(m).catch((err: unknown) => {
          // JetStream (or NATS) failed under it, e.g. a record not stored: offered again shortly,
          // or after the ack wait if even this nak is lost.
          this.log.warn({ err: (err as Error).message, subject: m.subject }, 'async delivery interrupted; JetStream offers it again');
          m.nak(NOT_PLACED_DELAY_MS);
        });
        this.running.add(job);
        void job.finally(() => this.running.delete(job));
      }
      // Ends by itself only when the consumer or its stream went away: set them up again.
      if (!this.stopped) this.restartSoon('the async consumer stopped');
    })();
  }

  private restartSoon(why: string): void {
    this.log.warn({ why }, `setting up async delivery again in ${RESTART_MS} ms`);
    this.restart = setTimeout(() => {
      this.start().catch((err: unknown) => {
        if (!this.stopped) this.restartSoon((err as Error).message);
      });
    }, RESTART_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restart);
    await this.messages?.close();
    await this.loop;
    await Promise.allSettled([...this.running]);
  }

  private async deliver(m: JsMsg): Promise<void> {
    let queued: Invocation;
    try {
      queued = decodeInvocation(m.headers);
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
    if (record.status === 'succeeded' || record.status === 'failed' || record.status === 'dead' || record.status === 'skipped') {
      m.ack(); // an outcome was recorded before a crash kept the ack from JetStream (or the tick was recorded missed)
      return;
    }
    const settings = queued.settings;
    const interrupted = record.status === 'running' ? record.attempts.at(-1) : undefined;
    if (interrupted && !interrupted.endedAt) {
      // Offered again while recorded running: the attempt was cut off before its outcome (its
      // scheduler stopped, or JetStream failed under it). It counts; it may have run.
      interrupted.endedAt = now();
      interrupted.error = { code: 'SKIFF_WORKER_LOST', detail: 'the attempt was interrupted before it had an outcome (its scheduler stopped, or JetStream failed under it)' };
      if (interrupted.attempt >= settings.asyncAttempts) return this.bury(m, record, interrupted.error);
    }
    // Out of attempts already, kept queued while the dead letters were full: bury it now.
    if (record.status === 'queued' && record.attempts.length >= settings.asyncAttempts) return this.bury(m, record, record.attempts.at(-1)?.error ?? { code: 'SKIFF_INTERNAL', detail: 'out of attempts' });
    if (Date.now() - acceptedAt.getTime() > settings.asyncMaxAgeMs) {
      return this.bury(m, record, { code: 'SKIFF_EVENT_TOO_OLD', detail: `not done ${settings.asyncMaxAgeMs} ms after it was accepted` });
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

    const inv: Invocation = { ...queued, deadline: Date.now() + timeoutMs, attempt: attempt.attempt };
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
        await this.records.put(record);
        m.nak(0); // the call never started: offered again at once, to another node
        return;
      }
      outcome = { ok: false, error: err instanceof SkiffError ? err : new SkiffError('SKIFF_INTERNAL', 'the attempt failed', { cause: err }) };
    } finally {
      clearInterval(working);
    }
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
      m.ack();
      return;
    }
    const error = { code: outcome.error.code, detail: clipDetail(outcome.error.message) };
    attempt.error = error;
    if (!isErrorCode(error.code) || !isRetried(error.code)) {
      record.status = 'failed';
      record.error = error;
      await this.records.put(record);
      m.term();
      return;
    }
    if (attempt.attempt >= settings.asyncAttempts) return this.bury(m, record, error);
    const delay = backoffMs(attempt.attempt + 1, settings.asyncBackoffMs, settings.asyncBackoffCapMs);
    record.status = 'queued';
    record.nextAttemptAt = new Date(Date.now() + delay).toISOString();
    await this.records.put(record);
    m.nak(delay);
  }

  /** Moves the invocation to the dead letters; if they are full, it stays queued and is offered again later. */
  private async bury(m: JsMsg, record: InvocationRecord, error: { code: string; detail: string }): Promise<void> {
    try {
      await this.deadLetters.add({ id: record.id, headers: m.headers!, body: m.data, attempts: record.attempts.length, acceptedAt: new Date(record.acceptedAt), error });
    } catch (err) {
      // Full (SKIFF_DEAD_LETTERS_MAX) or unreachable: it stays queued, nothing is dropped.
      this.log.error({ err: (err as Error).message, id: record.id }, 'cannot keep the dead letter; the invocation stays queued');
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
    m.ack();
    this.log.warn({ id: record.id, fn: record.fn, attempts: record.attempts.length, code: error.code }, 'async invocation dead');
  }
}
