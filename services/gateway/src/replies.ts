import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/** Nothing subscribed to the subject when the request was published (NATS status 503). */
export class NoRespondersError extends Error {
  override readonly name = 'NoRespondersError';
}

/** No reply before the timeout. */
export class ReplyTimeoutError extends Error {
  override readonly name = 'ReplyTimeoutError';
}

interface Waiting {
  resolve: (m: Msg) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Request/reply over one wildcard inbox subscription: each request gets a token, its reply
 * comes to `<inbox>.<token>`. This is what nats.js's request() does, minus the per-request
 * promise plumbing and the Error object (with a stack trace) it builds for every request,
 * which showed up in the gateway's profile on the invoke path.
 */
export class Replies {
  private readonly prefix = `${createInbox()}.`;
  private readonly waiting = new Map<string, Waiting>();
  private readonly sub: Subscription;
  private next = 0;

  constructor(private readonly nc: NatsConnection) {
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (_err, m) => this.onReply(m) });
  }

  request(subject: string, body: Uint8Array, headers: MsgHdrs, timeoutMs: number): Promise<Msg> {
    const token = (this.next++).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(token);
        reject(new ReplyTimeoutError(`no reply on ${subject} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(token, { resolve, reject, timer });
      try {
        this.nc.publish(subject, body, { headers, reply: this.prefix + token });
      } catch (err) {
        clearTimeout(timer);
        this.waiting.delete(token);
        reject(err as Error);
      }
    });
  }

  /** Stops listening; requests still waiting fail. */
  close(): void {
    this.sub.unsubscribe();
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(new Error('the gateway is closing'));
    }
    this.waiting.clear();
  }

  private onReply(m: Msg): void {
    if (!m) return;
    const token = m.subject.slice(this.prefix.length);
    const w = this.waiting.get(token);
    if (!w) return; // late, after its timeout
    this.waiting.delete(token);
    clearTimeout(w.timer);
    if (m.data.length === 0 && m.headers?.code === 503) w.reject(new NoRespondersError('nothing listens on the subject'));
    else w.resolve(m);
  }
}
