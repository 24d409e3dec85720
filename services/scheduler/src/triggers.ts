import { headers as natsHeaders, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { MAX_EVENT_HEADERS_BYTES, PLATFORM_SUBJECTS, QUEUE_GROUPS, SkiffError, decodeResult, encodeInvocation, newCallId, type Invocation } from '@skiff/contracts';
import { entryInvocation, type TriggerEntry } from '@skiff/events';
import { NotStarted, type NodeCalls } from './node-calls.js';
import { NodeDirectory } from '@skiff/placement';
import type { Logger } from '@skiff/service-kit';
import { SpanKind, contextFrom, failed, tracer, under } from '@skiff/telemetry';
import { publisherTrace } from './publisher-trace.js';

const TRACER = tracer('@skiff/scheduler');

/** The header of an error reply: the error code (its body is the problem's detail). */
export const SKIFF_ERROR_HEADER = 'Skiff-Error';

export interface TriggerOptions {
  /** The platform's body limit (SKIFF_MAX_BODY_BYTES): a larger event is dropped. */
  maxBodyBytes: number;
  /** Triggered calls this scheduler runs at once; more are refused (SKIFF_OVERLOADED). */
  maxInFlight: number;
}

/** A reply subject there would be a forged message to a service (e.g. a result on the gateway's inbox). */
const PLATFORM_PREFIXES = PLATFORM_SUBJECTS.map((s) => s.slice(0, -1));
const replyAllowed = (reply: string) => !PLATFORM_PREFIXES.some((p) => reply.startsWith(p));

interface Triggered {
  entry: TriggerEntry;
  subs: Map<string, Subscription>;
}

/**
 * Subject triggers: every scheduler learns each function's subjects from SKIFF_TRIGGERS and
 * subscribes to them in one queue group, so each message runs the function once whichever
 * scheduler gets it. The call is placed with the node directory and sent to the worker as the
 * scheduler sends async invocations; a message with a reply subject gets the result (or an
 * error reply with a Skiff-Error header). Nothing is retried: a lost message is core NATS's
 * at-most-once.
 */
export class SubjectTriggers {
  private readonly functions = new Map<string, Triggered>();
  private inFlight = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly directory: NodeDirectory,
    private readonly calls: NodeCalls,
    private readonly opts: TriggerOptions,
    private readonly log: Logger,
  ) {}

  stop(): void {
    for (const fn of [...this.functions.keys()]) this.update(fn, undefined);
  }

  /**
   * Subscribes to the subjects the function has now and drops the ones it no longer has. A
   * durable trigger's messages are JetStream's to keep (DurableTriggers), not subscribed here.
   */
  update(fn: string, entry: TriggerEntry | undefined): void {
    const known = this.functions.get(fn) ?? { entry: entry!, subs: new Map<string, Subscription>() };
    const wanted = new Set(entry && !entry.durable ? entry.subjects : []);
    for (const [subject, sub] of known.subs) {
      if (!wanted.has(subject)) (sub.unsubscribe(), known.subs.delete(subject));
    }
    if (!entry || wanted.size === 0) {
      if (this.functions.delete(fn)) this.log.info({ fn }, 'subject triggers removed');
      return;
    }
    known.entry = entry;
    for (const subject of wanted) {
      if (known.subs.has(subject)) continue;
      known.subs.set(subject, this.nc.subscribe(subject, { queue: QUEUE_GROUPS.triggers, callback: (err, m) => (err ? this.log.warn({ err, subject }, 'trigger subscription failed') : void this.run(fn, m)) }));
    }
    this.functions.set(fn, known);
    this.log.info({ fn, fnVersion: entry.fnVersion, subjects: [...wanted] }, 'subject triggers');
  }

  private async run(fn: string, m: Msg): Promise<void> {
    const entry = this.functions.get(fn)?.entry;
    if (!entry) return;
    const reply = m.reply && replyAllowed(m.reply) ? m.reply : undefined;
    if (m.reply && !reply) this.log.warn({ fn, subject: m.subject }, 'trigger message with a reply subject of the platform: run, not answered');
    // The delivery's span: a child of the publisher's trace when its message carries a traceparent.
    const span = TRACER.startSpan('trigger delivery', { kind: SpanKind.CONSUMER, attributes: { 'faas.name': fn, 'faas.version': String(entry.fnVersion), 'messaging.system': 'nats', 'messaging.destination.name': m.subject.slice(0, 256) } }, contextFrom(publisherTrace(m.headers)));
    try {
      const inv = under(this.invocation(entry, m), span);
      span.setAttribute('faas.invocation_id', inv.callId);
      if (this.inFlight >= this.opts.maxInFlight) throw new SkiffError('SKIFF_OVERLOADED', `this scheduler runs ${this.opts.maxInFlight} triggered calls already`);
      this.inFlight++;
      try {
        const result = await this.send(inv, m.data, entry.timeoutMs);
        if (reply) this.nc.publish(reply, result.body, result.contentType ? { headers: contentTypeHeaders(result.contentType) } : {});
      } finally {
        this.inFlight--;
      }
    } catch (err) {
      const e = err instanceof SkiffError ? err : new SkiffError('SKIFF_INTERNAL', 'the triggered call failed', { cause: err });
      failed(span, e);
      this.log.warn({ fn, subject: m.subject, traceId: span.spanContext().traceId, code: e.code, err: e.message }, 'triggered call failed');
      if (reply) {
        const h = natsHeaders();
        h.set(SKIFF_ERROR_HEADER, e.code);
        this.nc.publish(reply, new TextEncoder().encode(e.message), { headers: h });
      }
    } finally {
      span.end();
    }
  }

  /** The call for one message, its size and headers bounded: a stranger may publish anything there. */
  private invocation(entry: TriggerEntry, m: Msg): Invocation {
    if (m.data.length > this.opts.maxBodyBytes) throw new SkiffError('SKIFF_BODY_TOO_LARGE', `the event's body of ${m.data.length} bytes is over the limit of ${this.opts.maxBodyBytes}`);
    const headers: Record<string, string[]> = {};
    for (const [k, v] of m.headers ?? []) headers[k] = v;
    if (JSON.stringify(headers).length > MAX_EVENT_HEADERS_BYTES) throw new SkiffError('SKIFF_HEADERS_TOO_LARGE', `the event's headers are over ${MAX_EVENT_HEADERS_BYTES} bytes`);
    const contentType = headers['Content-Type']?.[0];
    return entryInvocation(entry, newCallId(), { subject: m.subject, id: newCallId(), headers }, contentType && /^[\x20-\x7e]{1,256}$/.test(contentType) ? contentType : undefined);
  }

  /** Places the call and sends it to that node; the worker's answer as a result, or a SkiffError. */
  private async send(inv: Invocation, body: Uint8Array, timeoutMs: number): Promise<{ body: Uint8Array; contentType: string | undefined }> {
    const target = { fn: inv.fn, fnVersion: inv.fnVersion, image: inv.image };
    const node = this.directory.pick(target);
    if (!node) throw new SkiffError('SKIFF_NO_WORKER', 'no worker node is available to run the function');
    this.directory.placed(node.nodeId, target);
    let answer;
    try {
      answer = await this.calls.call(node.nodeId, encodeInvocation(inv), body, timeoutMs);
    } catch (err) {
      if (!(err instanceof NotStarted)) throw err;
      this.directory.forget(node.nodeId, 'nothing listens on its subject');
      throw new SkiffError('SKIFF_NO_WORKER', `worker node "${node.nodeId}" is gone`);
    }
    const result = decodeResult(answer.headers, answer.data);
    if (!result.ok) throw result.error;
    return { body: result.body, contentType: result.contentType };
  }
}

function contentTypeHeaders(contentType: string) {
  const h = natsHeaders();
  h.set('Content-Type', contentType);
  return h;
}
