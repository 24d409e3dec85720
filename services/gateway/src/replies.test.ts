import { describe, expect, it } from 'vitest';
import type { Msg, MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { encodeResultHeaders } from '@skiff/contracts';
import { Replies } from './replies.js';

/** A NATS connection stubbed at its boundary: publishes are recorded, replies are handed in. */
function stubConnection() {
  let deliver: (m: Msg) => void = () => undefined;
  const published: { subject: string; reply: string }[] = [];
  const nc = {
    subscribe: (_subject: string, opts: { callback: (err: unknown, m: Msg) => void }) => {
      deliver = (m) => opts.callback(null, m);
      return { unsubscribe: () => undefined };
    },
    publish: (subject: string, _data: Uint8Array, opts: { reply: string }) => published.push({ subject, reply: opts.reply }),
  } as unknown as NatsConnection;
  const reply = (to: string, headers: MsgHdrs, data = new Uint8Array(0)) => deliver({ subject: to, data, headers } as unknown as Msg);
  return { nc, published, reply };
}

const headers = encodeResultHeaders('abc', true);
const soon = () => Date.now() + 60_000;
const sent = async (published: unknown[], n: number) => {
  for (let i = 0; i < 100 && published.length < n; i++) await new Promise((r) => setImmediate(r));
  expect(published).toHaveLength(n);
};

describe('Replies', () => {
  it('fails only the requests waiting on a lost node', async () => {
    const { nc, published, reply } = stubConnection();
    const replies = new Replies(nc);
    const onA = replies.request('skiff.node.a.invoke', new Uint8Array(0), headers, soon(), 'a');
    const onB = replies.request('skiff.node.b.invoke', new Uint8Array(0), headers, soon(), 'b');
    await sent(published, 2);
    expect(replies.failOn('a', () => new Error('a lost'))).toBe(1);
    await expect(onA).rejects.toThrow('a lost');
    reply(published[1]!.reply, encodeResultHeaders('abc', true), new Uint8Array([1]));
    expect((await onB).data).toEqual(new Uint8Array([1]));
  });

  it('fails every request when told to, sent or not yet sent', async () => {
    const { nc, published } = stubConnection();
    const replies = new Replies(nc);
    const first = replies.request('skiff.node.a.invoke', new Uint8Array(0), headers, soon(), 'a');
    await sent(published, 1);
    const queued = replies.request('skiff.invoke', new Uint8Array(0), headers, soon());
    expect(replies.failAll(() => new Error('nats gone'))).toBe(2);
    await expect(first).rejects.toThrow('nats gone');
    await expect(queued).rejects.toThrow('nats gone');
  });
});
