import { describe, expect, it } from 'vitest';
import { headers } from '@nats-io/nats-core';
import { SkiffError } from './errors.js';
import { H, decodeInvocation, decodeResult, encodeError, encodeInvocation, encodeResultHeaders, type Invocation } from './messages.js';

const inv: Invocation = { callId: 'abc', deadline: 123, fn: 'echo', fnVersion: 2, image: `sha256:${'0'.repeat(64)}`, mode: 'exec', limits: { memoryMb: 128, cpus: 0.5, maxProcesses: 64, tmpMb: 16 } };

describe('invocation headers', () => {
  it('round-trip', () => {
    expect(decodeInvocation(encodeInvocation(inv))).toEqual({ ...inv, traceparent: undefined, tracestate: undefined });
  });

  it('reject what does not fit, naming the header', () => {
    const h = encodeInvocation(inv);
    h.set(H.image, 'latest');
    expect(() => decodeInvocation(h)).toThrow(SkiffError);
    try {
      decodeInvocation(h);
    } catch (e) {
      expect((e as SkiffError).code).toBe('SKIFF_BAD_MESSAGE');
      expect((e as SkiffError).errors?.[0]?.field).toBe(H.image);
    }
    expect(() => decodeInvocation(undefined)).toThrow(/invocation rejected/);
  });

  it('refuse a call id that could name a parent directory', () => {
    expect(() => decodeInvocation(encodeInvocation({ ...inv, callId: '..' }))).toThrow(SkiffError);
  });

  it('refuse another protocol version', () => {
    const h = encodeInvocation(inv);
    h.set(H.version, '2');
    expect(() => decodeInvocation(h)).toThrow(SkiffError);
  });
});

describe('results', () => {
  it('carry output bytes or a coded error', () => {
    const ok = decodeResult(encodeResultHeaders('abc', true), new Uint8Array([1, 2]));
    expect(ok).toEqual({ ok: true, callId: 'abc', body: new Uint8Array([1, 2]) });
    const failed = decodeResult(encodeResultHeaders('abc', false), encodeError(new SkiffError('SKIFF_NO_WORKER', 'none')));
    expect(failed.ok).toBe(false);
    if (!failed.ok) expect([failed.error.code, failed.error.status, failed.error.message]).toEqual(['SKIFF_NO_WORKER', 503, 'none']);
  });

  it('reject an error body with an unknown code', () => {
    const body = new TextEncoder().encode(JSON.stringify({ code: 'NOPE', detail: 'x' }));
    expect(() => decodeResult(encodeResultHeaders('abc', false), body)).toThrow(SkiffError);
    expect(() => decodeResult(headers(), new Uint8Array())).toThrow(SkiffError);
  });
});
