import { jetstream, jetstreamManager, JetStreamApiError, type JetStreamClient, type JetStreamManager, type StoredMsg } from '@nats-io/jetstream';
import { headers as natsHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import { JETSTREAM, SUBJECTS, SkiffError, decodeInvocation } from '@skiff/contracts';

const DEAD_H = {
  code: 'Skiff-Dead-Code',
  detail: 'Skiff-Dead-Detail',
  attempts: 'Skiff-Dead-Attempts',
  acceptedAt: 'Skiff-Accepted-At',
  deadAt: 'Skiff-Dead-At',
} as const;

/** What a dead letter says about itself (its body is the invocation's own). */
export interface DeadLetter {
  id: string;
  fn: string;
  fnVersion: number;
  attempts: number;
  acceptedAt: string;
  deadAt: string;
  error: { code: string; detail: string };
  bytes: number;
}

export interface DeadLetterInput {
  id: string;
  /** The invocation's headers as queued. */
  headers: MsgHdrs;
  body: Uint8Array;
  attempts: number;
  acceptedAt: Date;
  error: { code: string; detail: string };
}

/** A header value: one line, at most 1024 characters. */
const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ').slice(-1024);

/**
 * Dead letters in the SKIFF_DEAD stream, one subject per invocation id: kept until redriven or
 * purged, never expired. When the stream is full a new one is refused, and the scheduler keeps
 * that invocation queued instead: nothing leaves silently.
 */
export class DeadLetters {
  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
  ) {}

  static async open(nc: NatsConnection): Promise<DeadLetters> {
    return new DeadLetters(jetstream(nc, { timeout: 5000 }), await jetstreamManager(nc, { timeout: 5000 }));
  }

  async add(d: DeadLetterInput): Promise<void> {
    const h = natsHeaders();
    for (const [k, values] of d.headers) for (const v of values) if (!k.startsWith('Nats-')) h.append(k, v);
    h.set(DEAD_H.code, d.error.code);
    h.set(DEAD_H.detail, oneLine(d.error.detail) || '-');
    h.set(DEAD_H.attempts, String(d.attempts));
    h.set(DEAD_H.acceptedAt, d.acceptedAt.toISOString());
    h.set(DEAD_H.deadAt, new Date().toISOString());
    try {
      await this.js.publish(SUBJECTS.deadLetter(d.id), d.body, { headers: h, expect: { streamName: JETSTREAM.deadStream } });
    } catch (err) {
      if (err instanceof JetStreamApiError && /maximum messages/i.test(err.message)) {
        throw new SkiffError('SKIFF_QUEUE_FULL', 'the dead-letter stream is full (SKIFF_DEAD_LETTERS_MAX); the invocation stays queued', { cause: err });
      }
      throw err;
    }
  }

  /** The dead letter and its stored message (for a redrive), or undefined. */
  async get(id: string): Promise<{ letter: DeadLetter; msg: StoredMsg } | undefined> {
    const msg = await this.jsm.direct.getMessage(JETSTREAM.deadStream, { last_by_subj: SUBJECTS.deadLetter(id) });
    return msg ? { letter: describe(msg), msg } : undefined;
  }

  /** The function's dead letters, oldest first, from stream sequence `cursor` on. */
  async list(fn: string, cursor: number, limit: number): Promise<{ letters: DeadLetter[]; next: number | undefined }> {
    const letters: DeadLetter[] = [];
    let seq = cursor;
    while (letters.length < limit) {
      const msg = await this.jsm.direct.getMessage(JETSTREAM.deadStream, { seq, next_by_subj: SUBJECTS.deadLetter(`${fn}.*`) });
      if (!msg) return { letters, next: undefined };
      letters.push(describe(msg));
      seq = msg.seq + 1;
    }
    return { letters, next: seq };
  }

  /** Removes the dead letter stored at `seq`. */
  async remove(seq: number): Promise<void> {
    await this.jsm.streams.deleteMessage(JETSTREAM.deadStream, seq, false);
  }
}

function describe(msg: StoredMsg): DeadLetter {
  const inv = decodeInvocation(msg.header);
  const h = msg.header;
  return {
    id: inv.callId,
    fn: inv.fn,
    fnVersion: inv.fnVersion,
    attempts: Number(h.get(DEAD_H.attempts)) || 0,
    acceptedAt: h.get(DEAD_H.acceptedAt),
    deadAt: h.get(DEAD_H.deadAt),
    error: { code: h.get(DEAD_H.code), detail: h.get(DEAD_H.detail) },
    bytes: msg.data.length,
  };
}
