import { jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { JETSTREAM, MAX_EVENT_HEADERS_BYTES, SkiffError, durableTriggerStream } from '@skiff/contracts';
import { entryInvocation, invocationId, type AsyncQueue, type InvocationRecords, type TriggerEntry } from '@skiff/events';
import { publisherTrace } from './publisher-trace.js';
import { untilItWorks, type Logger, type Retrying } from '@skiff/service-kit';

/** A message the queue could not take is offered again after this. */
const QUEUE_RETRY_MS = 2000;
/** While a function's stream or consumer cannot be set up, it is tried again this often. */
const SETUP_RETRY_MS = 2000;
/** How long a scheduler that took a message may take to queue it before JetStream offers it to another. */
const ACK_WAIT_MS = 30_000;
/** Messages one scheduler holds per function at once. */
const BATCH = 64;

interface Bridge {
  entry: TriggerEntry;
  setup: Retrying;
  messages?: ConsumerMessages;
  stopped: boolean;
}

/**
 * Durable subject triggers: a function with `durable: true` has a stream of its subjects'
 * messages (the gateway makes it before the deploy is stored), so a message published while no
 * worker or scheduler runs waits there. Every scheduler pulls from the stream's one durable
 * consumer and queues each message as an async invocation; from there it runs like any other
 * (the function's retries, its record, the dead letters). A message is acknowledged only after
 * SKIFF_ASYNC has stored its invocation, whose id is derived from the stream and the message's
 * sequence: one offered again after a crash is the same invocation, and JetStream drops the copy.
 */
export class DurableTriggers {
  private readonly bridges = new Map<string, Bridge>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly queue: AsyncQueue,
    private readonly records: InvocationRecords,
    private readonly log: Logger,
  ) {}

  /** Follows a function's trigger entry: pulls its stream while the entry says durable. */
  update(fn: string, entry: TriggerEntry | undefined): void {
    const durable = entry?.durable === true && entry.subjects.length > 0 ? entry : undefined;
    const bridge = this.bridges.get(fn);
    if (bridge && durable) {
      bridge.entry = durable; // the next message runs the new version
      return;
    }
    if (bridge) void this.close(fn, bridge);
    if (durable) this.open(fn, durable);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.bridges].map(([fn, b]) => this.close(fn, b)));
  }

  private open(fn: string, entry: TriggerEntry): void {
    const bridge: Bridge = { entry, stopped: false, setup: { cancel: () => {} } };
    this.bridges.set(fn, bridge);
    bridge.setup = untilItWorks(
      () => this.pull(fn, bridge),
      SETUP_RETRY_MS,
      (err, ms) => this.log.warn({ fn, err: (err as Error).message }, `cannot pull the durable trigger's stream; trying again in ${ms} ms`),
    );
  }

  private async close(fn: string, bridge: Bridge): Promise<void> {
    bridge.stopped = true;
    bridge.setup.cancel();
    if (this.bridges.get(fn) === bridge) this.bridges.delete(fn);
    await bridge.messages?.close().catch(() => undefined);
  }

  private async pull(fn: string, bridge: Bridge): Promise<void> {
    const stream = durableTriggerStream(fn);
    const jsm = await jetstreamManager(this.nc, { timeout: 5000 });
    // The stream's creation time is part of each invocation id: a function deleted and made
    // again starts its sequence anew, and its messages must not be taken for the old ones.
    const { created } = await jsm.streams.info(stream);
    const config = { durable_name: JETSTREAM.durableTriggerConsumer, ack_policy: 'explicit' as const, ack_wait: nanos(ACK_WAIT_MS), max_deliver: -1, max_ack_pending: BATCH * 4 };
    try {
      await jsm.consumers.add(stream, config);
    } catch (err) {
      if (!/already in use|already exists/i.test((err as Error).message)) throw err;
    }
    const consumer = await jetstream(this.nc, { timeout: 5000 }).consumers.get(stream, JETSTREAM.durableTriggerConsumer);
    const messages = await consumer.consume({ max_messages: BATCH, expires: 5000 });
    if (bridge.stopped) return void (await messages.close());
    bridge.messages = messages;
    this.log.info({ fn, stream }, 'pulling the durable trigger');
    void (async () => {
      for await (const m of messages) await this.take(bridge.entry, created, m);
      // Ends by itself only when the consumer or the stream went away: set it up again.
      if (!bridge.stopped && this.bridges.get(fn) === bridge) {
        this.bridges.delete(fn);
        this.open(fn, bridge.entry);
      }
    })();
  }

  /** Queues one message as an async invocation of the function's current version. */
  private async take(entry: TriggerEntry, created: string, m: JsMsg): Promise<void> {
    const id = invocationId(entry.fn, `durable:${created}:${m.seq}`);
    const headers: Record<string, string[]> = {};
    for (const [k, v] of m.headers ?? []) headers[k] = v;
    try {
      if (JSON.stringify(headers).length > MAX_EVENT_HEADERS_BYTES) throw new SkiffError('SKIFF_HEADERS_TOO_LARGE', `the event's headers are over ${MAX_EVENT_HEADERS_BYTES} bytes`);
      const contentType = headers['Content-Type']?.[0];
      // Queued in the publisher's trace, if it sent one: the attempts are its children.
      const inv = { ...entryInvocation(entry, id, { subject: m.subject, id, headers }, contentType && /^[\x20-\x7e]{1,256}$/.test(contentType) ? contentType : undefined), ...publisherTrace(m.headers) };
      await this.queue.enqueue(inv, entry.timeoutMs, m.data, id, entry.destinations);
      m.ack();
    } catch (err) {
      if (err instanceof SkiffError && err.code === 'SKIFF_HEADERS_TOO_LARGE') return this.refuse(entry, id, m, err);
      this.log.warn({ fn: entry.fn, err: (err as Error).message }, `cannot queue a durable trigger's message; offered again in ${QUEUE_RETRY_MS} ms`);
      m.nak(QUEUE_RETRY_MS);
    }
  }

  /** A message that can never run: recorded as failed, so it is seen, and removed. */
  private async refuse(entry: TriggerEntry, id: string, m: JsMsg, err: SkiffError): Promise<void> {
    const at = new Date().toISOString();
    try {
      await this.records.put({ id, fn: entry.fn, fnVersion: entry.fnVersion, status: 'failed', acceptedAt: new Date(m.info.timestampNanos / 1e6).toISOString(), updatedAt: at, attempts: [], error: { code: err.code, detail: err.message } });
      m.term();
    } catch (putErr) {
      m.nak(QUEUE_RETRY_MS); // kept until its failure can be recorded
      this.log.warn({ fn: entry.fn, err: (putErr as Error).message }, 'cannot record a refused durable trigger message');
    }
  }
}
