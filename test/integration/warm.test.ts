import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as loadYaml } from 'yaml';
import type { NatsConnection } from '@nats-io/transport-node';
import { SUBJECTS, type Heartbeat } from '@skiff/contracts';
import { Platform, REPO, waitUntil } from '@skiff/testkit';

const COUNTER = join(REPO, 'test/fixtures/functions/counter');

/** Stream-mode functions on warm instances: reuse, limits of a pool, failures, versions. */
describe('warm instances', () => {
  let p: Platform;
  let nc: NatsConnection;

  /** Waits for a heartbeat, from now on, that `check` accepts. */
  const heartbeat = async (check: (hb: Heartbeat) => boolean, what: string) => {
    let seen = false;
    const sub = nc.subscribe(SUBJECTS.heartbeat, { callback: (_err, m) => void (check(m.json<Heartbeat>()) && (seen = true)) });
    try {
      await waitUntil(async () => seen, what, 30_000);
    } finally {
      sub.unsubscribe();
    }
  };
  /** No instance of `fn` on the node, starting, idle or busy. */
  const noInstanceOf = (fn: string) => (hb: Heartbeat) => !hb.warm.some((w) => w.fn === fn);

  const call = async (fn: string, input: object = {}) => {
    const res = await p.api('POST', `/v1/functions/${fn}/invoke`, JSON.stringify(input), { 'content-type': 'application/json' });
    const text = await res.text();
    return { status: res.status, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
  };

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.buildNodeRuntime();
    await p.startAll();
    nc = await p.nats.connect('gateway'); // watches heartbeats, as a gateway does
  }, 180_000);
  afterAll(async () => {
    await nc?.close();
    await p?.close();
  });

  it('serves the example hello function', async () => {
    const schemas = loadYaml(readFileSync(join(REPO, 'functions/hello/function.yaml'), 'utf8'));
    const deployed = await p.deployNode('hello', join(REPO, 'functions/hello'), { inputSchema: schemas.inputSchema, outputSchema: schemas.outputSchema });
    expect(deployed.status).toBe(201);
    const res = await call('hello', { name: 'Ada' });
    expect(res).toEqual({ status: 200, body: { greeting: 'Hello, Ada!' } });
  });

  it('checks JSON input against the function schema before it runs, and publishes the schema', async () => {
    const bad = await call('hello', { name: 42, extra: true });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('SKIFF_VALIDATION_FAILED');
    expect(bad.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'body.name' }), { field: 'body.extra', message: 'is not a known field' }]));
    // Deployed functions are listed for a valid token only (docs/security.md #36).
    const doc = await (await p.api('GET', '/openapi.json')).json();
    const op = doc.paths['/v1/functions/hello/invoke'].post;
    expect(op.requestBody.content['application/json'].schema.required).toEqual(['name']);
    expect(op.responses['200'].content['application/json'].schema.properties.greeting).toEqual({ type: 'string' });
  });

  it('refuses a deploy whose schema is not a JSON Schema, naming the field', async () => {
    const res = await p.api('PUT', '/v1/functions/broken', { image: 'hello:latest', mode: 'stream', inputSchema: { type: 'no-such-type' } });
    expect(res.status).toBe(400);
    expect((await res.json()).errors[0].field).toBe('body.inputSchema');
  });

  it('reuses the instance for the next invocation', async () => {
    expect((await p.deployNode('counter', COUNTER)).status).toBe(201);
    const first = await call('counter');
    const second = await call('counter');
    expect(first.status).toBe(200);
    expect(second.body).toMatchObject({ instance: first.body.instance, count: first.body.count + 1 });
  });

  it('reports a thrown error as 502 and keeps the instance', async () => {
    const before = await call('counter');
    const failed = await call('counter', { fail: 'no luck' });
    expect(failed.status).toBe(502);
    expect(failed.body).toMatchObject({ code: 'SKIFF_FN_FAILED' });
    expect(failed.body.detail).toContain('no luck');
    expect((await call('counter')).body.instance).toBe(before.body.instance);
  });

  it('replaces an instance that crashed', async () => {
    const before = await call('counter');
    const crashed = await call('counter', { crash: true });
    expect(crashed.status).toBe(502);
    expect(crashed.body.code).toBe('SKIFF_FN_FAILED');
    const after = await call('counter');
    expect(after.status).toBe(200);
    expect(after.body.instance).not.toBe(before.body.instance);
    expect(after.body.count).toBe(1);
  });

  it('stops an invocation past its deadline with 504 and replaces its instance', async () => {
    expect((await p.deployNode('slowpoke', COUNTER, { timeoutMs: 1500 })).status).toBe(201);
    const before = await call('slowpoke');
    const late = await call('slowpoke', { sleepMs: 5000 });
    expect(late.status).toBe(504);
    expect(late.body.code).toBe('SKIFF_DEADLINE_EXCEEDED');
    const after = await call('slowpoke');
    expect(after.status).toBe(200);
    expect(after.body.instance).not.toBe(before.body.instance);
  });

  it('serves up to `concurrency` invocations at once on one instance', async () => {
    expect((await p.deployNode('shared', COUNTER, { concurrency: 2, maxInstances: 1 })).status).toBe(201);
    await call('shared');
    // Each answers only once both run on one instance at the same time.
    const [a, b] = await Promise.all([call('shared', { meet: 2 }), call('shared', { meet: 2 })]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.body.instance).toBe(b.body.instance);
    expect(Math.max(a.body.activeAtStart, b.body.activeAtStart)).toBe(2);
  });

  it('queues beyond maxInstances × concurrency instead of starting more', async () => {
    expect((await p.deployNode('single', COUNTER, { concurrency: 1, maxInstances: 1 })).status).toBe(201);
    await call('single');
    const [a, b] = await Promise.all([call('single', { sleepMs: 700 }), call('single', { sleepMs: 700 })]);
    expect([a.status, b.status]).toEqual([200, 200]);
    // One instance, one at a time: the second waited for the first instead of overlapping.
    expect(a.body.instance).toBe(b.body.instance);
    expect([a.body.activeAtStart, b.body.activeAtStart]).toEqual([1, 1]);
  });

  it('starts instances in parallel for a burst, up to maxInstances', async () => {
    expect((await p.deployNode('burst', COUNTER, { concurrency: 1, maxInstances: 3 })).status).toBe(201);
    const results = await Promise.all([1, 2, 3].map(() => call('burst', { sleepMs: 500 })));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(new Set(results.map((r) => r.body.instance)).size).toBe(3);
  });

  it('scales to zero after the idle timeout', async () => {
    expect((await p.deployNode('napper', COUNTER, { idleTimeoutMs: 1000 })).status).toBe(201);
    const first = await call('napper');
    await heartbeat(noInstanceOf('napper'), 'napper to scale to zero');
    const later = await call('napper');
    expect(later.body.instance).not.toBe(first.body.instance);
    expect(later.body.count).toBe(1);
  });

  it('keeps minInstances warm past the idle timeout', async () => {
    expect((await p.deployNode('keeper', COUNTER, { idleTimeoutMs: 1000, minInstances: 1 })).status).toBe(201);
    expect((await p.deployNode('unkept', COUNTER, { idleTimeoutMs: 1000 })).status).toBe(201);
    const first = await call('keeper');
    await call('unkept');
    // unkept, idle for less time than keeper, has scaled to zero: keeper would have too
    await heartbeat(noInstanceOf('unkept'), 'unkept to scale to zero');
    expect((await call('keeper')).body.instance).toBe(first.body.instance);
  });

  it('starts minInstances when the version is deployed, before any invocation', async () => {
    const reported = heartbeat((hb) => hb.warm.some((w) => w.fn === 'early' && w.idle >= 1), 'a heartbeat reporting an idle instance of "early"');
    expect((await p.deployNode('early', COUNTER, { minInstances: 1 })).status).toBe(201);
    await reported;
    expect((await call('early')).body.count).toBe(1);
  });

  it('moves to new instances when a new version is deployed', async () => {
    const old = await call('counter');
    const current = await (await p.api('GET', '/v1/functions/counter')).json();
    const deployed = await p.deployNode('counter', COUNTER, { memoryMb: 192 });
    expect(deployed.status).toBe(200);
    expect(await deployed.json()).toMatchObject({ name: 'counter', version: current.version + 1, memoryMb: 192 });
    const fresh = await call('counter');
    expect(fresh.status).toBe(200);
    expect(fresh.body.instance).not.toBe(old.body.instance);
  });
});
