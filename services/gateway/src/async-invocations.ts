import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { JETSTREAM, SUBJECTS, SkiffError, decodeInvocation, type Destinations, type Invocation } from '@skiff/contracts';
import { AsyncQueue, DeadLetters, InvocationRecords, ensureEventStreams, type DeadLetter, type EventLimits, type InvocationRecord } from '@skiff/events';
import { untilItWorks, type Logger, type Retrying } from '@skiff/service-kit';
import type { Messaging } from './messaging.js';

/** While JetStream cannot be set up, it is tried again this often; async calls get 503 meanwhile. */
const RETRY_MS = 5000;
/** Room kept for an async invocation's headers within JetStream's largest message. */
const HEADER_ROOM = 64 * 1024;

/** A JetStream failure as the API tells it: retryable, and nothing half done that matters. */
async function jetStream<T>(what: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof SkiffError) throw err;
    throw new SkiffError('SKIFF_QUEUE_UNAVAILABLE', `JetStream did not answer while ${what} (${(err as Error).message}); try again shortly`, { cause: err });
  }
}

/** What the API shows of a queued invocation that no scheduler has taken yet (it has no record). */
function queuedView(inv: Invocation, acceptedAt: Date): InvocationRecord {
  const at = acceptedAt.toISOString();
  return { id: inv.callId, fn: inv.fn, fnVersion: inv.fnVersion, status: 'queued', acceptedAt: at, updatedAt: at, attempts: [], ...(inv.idempotencyKey ? { idempotencyKey: inv.idempotencyKey } : {}) };
}

/**
 * The gateway's side of async invocations: accepting them onto JetStream, and reading their
 * records and dead letters. The streams are ensured at start (and again until that works);
 * until then every async operation answers 503 SKIFF_QUEUE_UNAVAILABLE.
 */
export class AsyncInvocations {
  private parts: { queue: AsyncQueue; records: InvocationRecords; dead: DeadLetters; jsm: JetStreamManager } | undefined;
  private setup: Retrying | undefined;

  constructor(
    private readonly messaging: Messaging,
    private readonly limits: EventLimits,
    private readonly log: Logger,
  ) {}

  private onReady: (() => Promise<void>) | undefined;

  /** `onReady` runs once the streams exist (the trigger entries are written then). */
  start(onReady?: () => Promise<void>): void {
    this.onReady = onReady;
    this.setup = untilItWorks(() => this.setUp(), RETRY_MS, (err, ms) => this.log.error({ err }, `cannot set up JetStream for async invocations; trying again in ${ms} ms`));
  }

  close(): void {
    this.setup?.cancel();
  }

  private async setUp(): Promise<void> {
    const nc = this.messaging.nc;
    await ensureEventStreams(nc, this.limits);
    this.parts = { queue: new AsyncQueue(nc), records: await InvocationRecords.open(nc), dead: await DeadLetters.open(nc), jsm: await jetstreamManager(nc, { timeout: 5000 }) };
    await this.onReady?.();
    this.onReady = undefined;
  }

  private ready(): NonNullable<AsyncInvocations['parts']> {
    if (!this.messaging.connected) throw new SkiffError('SKIFF_NATS_UNAVAILABLE', 'the gateway is not connected to NATS; nothing was accepted, try again shortly');
    if (!this.parts) throw new SkiffError('SKIFF_QUEUE_UNAVAILABLE', 'JetStream is not set up for async invocations (yet); nothing was accepted, try again shortly');
    return this.parts;
  }

  /**
   * Queues the invocation (its callId is its id). With an Idempotency-Key, an invocation already
   * recorded under the same id is returned as it is, and JetStream drops a second copy within
   * its duplicate window. The outcome goes to `destinations` (the function's at accept).
   */
  async accept(inv: Invocation, timeoutMs: number, body: Uint8Array, destinations?: Destinations): Promise<InvocationRecord> {
    const { queue } = this.ready();
    if (body.length > this.limits.maxMessageBytes - HEADER_ROOM) {
      throw new SkiffError('SKIFF_BODY_TOO_LARGE', `an async invocation's body may be at most ${this.limits.maxMessageBytes - HEADER_ROOM} bytes`);
    }
    if (inv.idempotencyKey) {
      const known = await this.read(inv.callId);
      if (known) return known;
    }
    const { duplicate } = await queue.enqueue(inv, timeoutMs, body, inv.callId, destinations); // its failures are SkiffErrors already
    // Accepted by a concurrent request with the same key a moment ago: that one's state.
    return (duplicate && (await this.read(inv.callId))) || queuedView(inv, new Date());
  }

  /** The record, or the queued message itself before any scheduler took it, or undefined. */
  read(id: string): Promise<InvocationRecord | undefined> {
    const { records, jsm } = this.ready();
    return jetStream('reading an invocation', async () => {
      const record = await records.get(id);
      if (record) return record;
      const queued = await jsm.direct.getMessage(JETSTREAM.asyncStream, { last_by_subj: SUBJECTS.asyncInvocation(id) });
      return queued ? queuedView(decodeInvocation(queued.header), queued.time) : undefined;
    });
  }

  list(fn: string, cursor: number, limit: number): Promise<{ records: InvocationRecord[]; next: number | undefined }> {
    const { records } = this.ready();
    return jetStream('listing invocations', () => records.list(fn, cursor, limit));
  }

  deadLetters(fn: string, cursor: number, limit: number): Promise<{ letters: DeadLetter[]; next: number | undefined }> {
    const { dead } = this.ready();
    return jetStream('listing dead letters', () => dead.list(fn, cursor, limit));
  }

  /**
   * Queues a dead letter again as a new message, attempts anew, on the function's current
   * version (`current`: what a fix deployed since) and to its current `destinations`, then
   * removes it.
   */
  async redrive(current: Invocation, timeoutMs: number, id: string, destinations?: Destinations): Promise<InvocationRecord> {
    const { queue, dead, records } = this.ready();
    return jetStream('redriving a dead letter', async () => {
      const found = await this.deadLetter(current.fn, id);
      const was = decodeInvocation(found.msg.header);
      const inv: Invocation = { ...current, callId: id, traceparent: was.traceparent, tracestate: was.tracestate, contentType: was.contentType, idempotencyKey: was.idempotencyKey };
      // A message id of its own: the original's may still be in the duplicate window.
      await queue.enqueue(inv, timeoutMs, found.msg.data, `${id}.redrive.${found.msg.seq}`, destinations);
      await dead.remove(found.msg.seq);
      const record = queuedView(inv, new Date());
      await records.put(record);
      this.log.info({ id, fn: inv.fn, fnVersion: inv.fnVersion }, 'dead letter redriven');
      return record;
    });
  }

  purge(fn: string, id: string): Promise<void> {
    const { dead } = this.ready();
    return jetStream('purging a dead letter', async () => {
      const found = await this.deadLetter(fn, id);
      await dead.remove(found.msg.seq);
      this.log.info({ id, fn }, 'dead letter purged');
    });
  }

  /**
   * A deleted function's queued invocations end as failed (SKIFF_FN_DELETED) rather than wait
   * for ever: each gets its record, then the queue drops them. One a scheduler is running right
   * now finishes, and its outcome replaces the record.
   */
  async functionDeleted(fn: string): Promise<void> {
    if (!this.parts) return;
    const { records, jsm } = this.parts;
    const filter = SUBJECTS.asyncInvocation(`${fn}.*`);
    let failed = 0;
    for (let seq = 0; ; ) {
      const m = await jsm.direct.getMessage(JETSTREAM.asyncStream, { seq, next_by_subj: filter });
      if (!m) break;
      const inv = decodeInvocation(m.header);
      const record = (await records.get(inv.callId)) ?? queuedView(inv, m.time);
      if (record.status === 'queued' || record.status === 'running') {
        await records.put({ ...record, status: 'failed', updatedAt: new Date().toISOString(), error: { code: 'SKIFF_FN_DELETED', detail: `function "${fn}" was deleted before the invocation ran` } });
        failed++;
      }
      seq = m.seq + 1;
    }
    await jsm.streams.purge(JETSTREAM.asyncStream, { filter });
    if (failed > 0) this.log.info({ fn, failed }, 'queued async invocations of a deleted function failed');
  }

  private async deadLetter(fn: string, id: string) {
    const found = id.startsWith(`${fn}.`) ? await this.ready().dead.get(id) : undefined;
    if (!found) throw new SkiffError('SKIFF_DEAD_LETTER_NOT_FOUND', `function "${fn}" has no dead letter "${id}"`);
    return found;
  }
}
