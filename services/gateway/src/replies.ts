import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/** Nothing subscribed to the subject when the request was published (NATS status 503). */
export class NoRespondersError extends Error {
  override readonly name = 'NoRespondersError';
}

/** No reply before the deadline. */
export class ReplyTimeoutError extends Error {
  override readonly name = 'ReplyTimeoutError';
}

interface Request {
  subject: string;
  body: Uint8Array;
  headers: MsgHdrs;
  deadline: number;
  token: string;
  /** The node the request went to, if its subject is a node's. */
  node: string | undefined;
  resolve: (m: Msg) => void;
  reject: (err: Error) => void;
  timer?: NodeJS.Timeout;
}

/**
 * Request/reply over one wildcard inbox subscription: each request gets a token and its reply
 * comes to `<inbox>.<token>`, as with nats.js's request(), minus the Error object (with a
 * stack trace) and the promise plumbing it builds per request.
 *
 * Requests made during one turn of the event loop are published together at its end
 * (setImmediate), so they reach NATS in one write: under load the gateway reads many HTTP
 * requests per turn, and a write per request was its largest single cost. A lone request
 * waits only for the rest of the current turn.
 *
 * Each request knows the node it went to, so the requests of a lost node, or all of them when
 * NATS is gone, can be failed at once rather than at their deadlines.
 */
export class Replies {
  private readonly prefix = `${createInbox()}.`;
  private readonly waiting = new Map<string, Request>();
  private readonly sub: Subscription;
  private queued: Request[] = [];
  private next = 0;

  constructor(private readonly nc: NatsConnection) {
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (_err, m) => this.onReply(m) });
  }

  /**
   * Resolves with the reply; rejects with NoRespondersError, ReplyTimeoutError, a NATS error, or
   * what failOn/failAll give. `node`: the node the subject belongs to, if it is a node's.
   */
  request(subject: string, body: Uint8Array, headers: MsgHdrs, deadline: number, node?: string): Promise<Msg> {
    return new Promise<Msg>((resolve, reject) => {
      const token = (this.next++).toString(36);
      if (this.queued.push({ subject, body, headers, deadline, token, node, resolve, reject }) === 1) setImmediate(() => this.publishQueued());
    });
  }

  /** Fails every request waiting for a reply from `nodeId`. */
  failOn(nodeId: string, error: () => Error): number {
    let failed = 0;
    for (const r of this.waiting.values()) {
      if (r.node !== nodeId) continue;
      this.settle(r);
      r.reject(error());
      failed++;
    }
    return failed;
  }

  /** Fails every request, sent or about to be. */
  failAll(error: () => Error): number {
    const all = [...this.waiting.values(), ...this.queued.splice(0)];
    for (const r of all) {
      this.settle(r);
      r.reject(error());
    }
    return all.length;
  }

  /** Stops listening; requests still waiting fail. */
  close(): void {
    this.sub.unsubscribe();
    for (const r of [...this.waiting.values(), ...this.queued.splice(0)]) {
      clearTimeout(r.timer);
      r.reject(new Error('the gateway is closing'));
    }
    this.waiting.clear();
  }

  private publishQueued(): void {
    const now = Date.now();
    for (const r of this.queued.splice(0)) {
      const left = r.deadline - now;
      if (left <= 0) {
        r.reject(new ReplyTimeoutError(`the deadline passed before the request to ${r.subject} was sent`));
        continue;
      }
      r.timer = setTimeout(() => {
        this.waiting.delete(r.token);
        r.reject(new ReplyTimeoutError(`no reply on ${r.subject} before the deadline`));
      }, left);
      this.waiting.set(r.token, r);
      try {
        this.nc.publish(r.subject, r.body, { headers: r.headers, reply: this.prefix + r.token });
      } catch (err) {
        clearTimeout(r.timer);
        this.waiting.delete(r.token);
        r.reject(err as Error);
      }
    }
  }

  private settle(r: Request): void {
    clearTimeout(r.timer);
    this.waiting.delete(r.token);
  }

  private onReply(m: Msg | undefined): void {
    if (!m) return;
    const r = this.waiting.get(m.subject.slice(this.prefix.length));
    if (!r) return; // late, after its deadline
    this.settle(r);
    if (m.data.length === 0 && m.headers?.code === 503) r.reject(new NoRespondersError(`nothing listens on ${r.subject}`));
    else r.resolve(m);
  }
}
