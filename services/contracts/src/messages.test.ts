import { describe, expect, it } from 'vitest';
import { headers } from '@nats-io/nats-core';
import { SkiffError } from './errors.js';
import { DEFAULT_SETTINGS } from './settings.js';
import { H, PROTOCOL_VERSION, decodeInvocation, decodeJson, decodePlaced, decodeResult, encodeError, encodeInvocation, encodePlacedHeaders, encodeResultHeaders, fnChangedSchema, heartbeatSchema, type Invocation } from './messages.js';

const inv: Invocation = { callId: 'abc', deadline: 123, fn: 'echo', fnVersion: 2, image: `sha256:${'0'.repeat(64)}`, mode: 'exec', settings: { ...DEFAULT_SETTINGS, cpus: 0.5, tmpMb: 16 } };

describe('invocation headers', () => {
  it('round-trip', () => {
    expect(decodeInvocation(encodeInvocation(inv))).toEqual({ ...inv, traceparent: undefined, tracestate: undefined, contentType: undefined });
    expect(decodeInvocation(encodeInvocation({ ...inv, contentType: 'application/json; charset=utf-8' })).contentType).toBe('application/json; charset=utf-8');
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

  it('refuse settings out of range, unknown or missing', () => {
    for (const bad of ['memoryMb=8', 'cpus=0.5', `${'x'}`, 'memoryMb=128;cpus=1;maxProcesses=64;tmpMb=64;concurrency=1;minInstances=0;maxInstances=10;idleTimeoutMs=300000;evil=1']) {
      const h = encodeInvocation(inv);
      h.set(H.settings, bad);
      expect(() => decodeInvocation(h), bad).toThrow(SkiffError);
    }
    const h = encodeInvocation({ ...inv, settings: { ...inv.settings, memoryMb: 8 } });
    expect(() => decodeInvocation(h)).toThrow(/memoryMb/);
  });

  it('refuse a function name the API would refuse, in invocations, function changes and heartbeats', () => {
    for (const fn of ['../relesc', 'Echo', 'a/b', '-x', `a${'b'.repeat(63)}`]) {
      expect(() => decodeInvocation(encodeInvocation({ ...inv, fn })), fn).toThrow(/Skiff-Function/);
      const changed = new TextEncoder().encode(JSON.stringify({ type: 'fn-changed', version: PROTOCOL_VERSION, fn, fnVersion: 1 }));
      expect(() => decodeJson(fnChangedSchema, changed, 'fn-changed'), fn).toThrow(SkiffError);
      const hb = { type: 'heartbeat', version: PROTOCOL_VERSION, nodeId: 'n', sentAt: 1, slots: 1, inflight: 0, intervalMs: 1000, warm: [{ fn, version: 1, idle: 1 }] };
      expect(() => decodeJson(heartbeatSchema, new TextEncoder().encode(JSON.stringify(hb)), 'heartbeat'), fn).toThrow(SkiffError);
    }
    expect(() => decodeInvocation(encodeInvocation({ ...inv, fnVersion: 0 }))).toThrow(/Skiff-Function-Version/);
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
    expect(ok).toEqual({ ok: true, callId: 'abc', body: new Uint8Array([1, 2]), contentType: undefined });
    expect(decodeResult(encodeResultHeaders('abc', true, 'application/json'), new Uint8Array()).ok && 'json').toBe('json');
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

describe('placement notices', () => {
  it('round-trip, and a result is not one', () => {
    expect(decodePlaced(encodePlacedHeaders('abc', 'node-a'))).toEqual({ callId: 'abc', nodeId: 'node-a' });
    expect(decodePlaced(encodeResultHeaders('abc', true))).toBeUndefined();
    expect(decodePlaced(undefined)).toBeUndefined();
  });

  it('refuse a node id that is not a subject token', () => {
    const h = encodePlacedHeaders('abc', 'node-a');
    h.set(H.node, 'node.a');
    expect(() => decodePlaced(h)).toThrow(/placement notice rejected/);
  });
});
