import { headers as natsHeaders } from '@nats-io/nats-core';
import { describe, expect, it } from 'vitest';
import { H, decodeInvocation, encodeInvocation, encodeResultHeaders, type Invocation } from './messages.js';
import { DEFAULT_SETTINGS } from './settings.js';
import { WireHeaders } from './wire-headers.js';

const inv: Invocation = {
  callId: '0123456789abcdef0123456789abcdef',
  deadline: 1_900_000_000_000,
  fn: 'hello',
  fnVersion: 3,
  image: `sha256:${'a'.repeat(64)}`,
  mode: 'stream',
  settings: { ...DEFAULT_SETTINGS, cpus: 0.5 },
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  contentType: 'application/json',
};

describe('WireHeaders', () => {
  it('writes exactly the bytes nats.js writes for the same headers', () => {
    const pairs: Array<[string, string]> = [
      [H.type, 'invoke'],
      [H.callId, 'abc'],
      [H.contentType, ' text/plain; charset=utf-8 '],
      ['Skiff-Empty', ''],
    ];
    const ours = new WireHeaders();
    const theirs = natsHeaders();
    for (const [k, v] of pairs) {
      ours.add(k, v);
      theirs.set(k, v);
    }
    expect(Buffer.from(ours.encode()).toString()).toBe(Buffer.from((theirs as unknown as { encode(): Uint8Array }).encode()).toString());
  });

  it('refuses a value that would end the header early', () => {
    expect(() => new WireHeaders().add(H.contentType, 'text/plain\r\nSkiff-Outcome: ok')).toThrow(/cannot contain/);
    expect(() => new WireHeaders().add(H.contentType, 'a\nb')).toThrow(/cannot contain/);
  });

  it('reads back as a MsgHdrs, and a later change shows in the bytes', () => {
    const h = encodeResultHeaders('abc', true, 'text/plain');
    expect(h.get(H.outcome)).toBe('ok');
    expect([...h].map(([k]) => k)).toEqual([H.contentType, H.type, H.version, H.callId, H.outcome]);
    h.set(H.outcome, 'error');
    expect(Buffer.from((h as WireHeaders).encode()).toString()).toContain(`${H.outcome}: error\r\n`);
  });

  it('carries an invocation through encode and decode unchanged', () => {
    expect(decodeInvocation(encodeInvocation(inv))).toEqual(inv);
  });
});
