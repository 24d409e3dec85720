import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INVOCATION_ID_PATTERN } from '@skiff/contracts';
import { Platform, REPO, freePort, functionProcesses, killFunctionProcesses, metricSample, waitUntil } from '@skiff/testkit';

/**
 * Async invocations (Prefer: respond-async) end to end: a real nats-server with JetStream,
 * scheduler, workers and containers. Each waits for a recorded outcome, never for a time.
 */
const ECHO = join(REPO, 'functions/echo');
const ASYNC = { prefer: 'respond-async' };

interface InvocationView {
  id: string;
  status: string;
  attempts: { attempt: number; nodeId?: string; error?: { code: string; detail: string } }[];
  result?: { body?: string; bytes: number };
  error?: { code: string };
  idempotencyKey?: string;
}

/** A function directory with one shell script, `handler.sh`. */
function script(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-async-fn-'));
  writeFileSync(join(dir, 'handler.sh'), text);
  return dir;
}

async function accept(p: Platform, fn: string, body: string, headers: Record<string, string> = {}): Promise<InvocationView> {
  const res = await p.api('POST', `/v1/functions/${fn}/invoke`, body, { ...ASYNC, ...headers });
  expect(res.status, await res.clone().text()).toBe(202);
  const record = (await res.json()) as InvocationView;
  expect(res.headers.get('location')).toBe(`/v1/invocations/${record.id}`);
  expect(res.headers.get('preference-applied')).toBe('respond-async');
  return record;
}

async function outcome(p: Platform, id: string, want: (r: InvocationView) => boolean = (r) => ['succeeded', 'failed', 'dead'].includes(r.status), ms = 60_000): Promise<InvocationView> {
  let last: InvocationView | undefined;
  await waitUntil(async () => {
    const res = await p.api('GET', `/v1/invocations/${id}`);
    if (res.status !== 200) return false;
    last = (await res.json()) as InvocationView;
    return want(last);
  }, `invocation ${id} to finish`, ms);
  return last!;
}

const resultText = (r: InvocationView) => Buffer.from(r.result?.body ?? '', 'base64').toString();

describe('async invocations', () => {
  let p: Platform;
  let schedulerMetrics: string;
  const scrape = async () => (await fetch(schedulerMetrics)).text();

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    const metricsPort = await freePort();
    schedulerMetrics = `http://127.0.0.1:${metricsPort}/metrics`;
    p.start('scheduler', { SKIFF_METRICS_PORT: String(metricsPort) });
    await p.startGateway();
    for (const id of ['node-a', 'node-b']) p.start('worker', { SKIFF_NODE_ID: id }, `worker-${id}`);
    await p.waitForNodes(['node-a', 'node-b']);
    expect((await p.deploy('echo', ECHO, ['/bin/sh', '/function/handler.sh'])).status).toBe(201);
  });
  afterAll(async () => p?.close());

  it('answers 202 with the id and Location once JetStream has it, and runs it', async () => {
    const accepted = await accept(p, 'echo', 'queued hello');
    expect(accepted.id).toMatch(INVOCATION_ID_PATTERN);
    expect(accepted.id.startsWith('echo.')).toBe(true);
    const done = await outcome(p, accepted.id);
    expect(done.status).toBe('succeeded');
    expect(resultText(done)).toBe('queued hello');
    expect(done.attempts).toHaveLength(1);
  });

  it('answers 404 for a function that does not exist, never 202', async () => {
    const res = await p.api('POST', '/v1/functions/nothing-here/invoke', 'x', ASYNC);
    expect(res.status).toBe(404);
    expect((await res.json()).code).toBe('SKIFF_FN_NOT_FOUND');
    expect((await p.api('GET', '/v1/invocations/echo.00000000000000000000000000000000')).status).toBe(404);
  });

  it('returns the first invocation for a second accept with the same Idempotency-Key, and gives the function the key', async () => {
    const dir = script('echo "key=$SKIFF_IDEMPOTENCY_KEY attempt=$SKIFF_ATTEMPT"\n');
    expect((await p.deploy('keyed', dir, ['/bin/sh', '/function/handler.sh'])).status).toBe(201);
    const first = await accept(p, 'keyed', 'a', { 'idempotency-key': 'order-42' });
    const second = await accept(p, 'keyed', 'b', { 'idempotency-key': 'order-42' });
    expect(second.id).toBe(first.id);
    const other = await accept(p, 'keyed', 'c', { 'idempotency-key': 'order-43' });
    expect(other.id).not.toBe(first.id);
    const done = await outcome(p, first.id);
    expect(resultText(done)).toBe('key=order-42 attempt=1\n');
    // Beyond the first run, the same key still answers with that invocation as recorded.
    const again = await accept(p, 'keyed', 'd', { 'idempotency-key': 'order-42' });
    expect(again).toMatchObject({ id: first.id, status: 'succeeded' });
    const list = (await (await p.api('GET', '/v1/functions/keyed/invocations')).json()) as { invocations: InvocationView[] };
    expect(list.invocations.map((r) => r.id).sort()).toEqual([first.id, other.id].sort());
  });

  it('gives a node runtime function the key and the attempt in its context', async () => {
    await p.buildNodeRuntime();
    const dir = mkdtempSync(join(tmpdir(), 'skiff-async-node-'));
    writeFileSync(join(dir, 'index.mjs'), 'export default async (event, context) => ({ attempt: context.attempt, key: context.idempotencyKey });\n');
    expect((await p.deployNode('keyed-node', dir)).status).toBe(201);
    const accepted = await accept(p, 'keyed-node', '{}', { 'idempotency-key': 'job-7', 'content-type': 'application/json' });
    const done = await outcome(p, accepted.id);
    expect(JSON.parse(resultText(done))).toEqual({ attempt: 1, key: 'job-7' });
  });

  it('retries a failing function with backoff, then keeps it as a dead letter with each attempt\'s error; redrive and purge work', async () => {
    const failing = script('echo "broken on attempt $SKIFF_ATTEMPT" >&2\nexit 3\n');
    expect((await p.deploy('flaky', failing, ['/bin/sh', '/function/handler.sh'], { asyncAttempts: 3, asyncBackoffMs: 50 })).status).toBe(201);
    const accepted = await accept(p, 'flaky', 'payload');
    const dead = await outcome(p, accepted.id);
    expect(dead.status).toBe('dead');
    expect(dead.attempts.map((a) => a.error?.code)).toEqual(['SKIFF_FN_FAILED', 'SKIFF_FN_FAILED', 'SKIFF_FN_FAILED']);
    expect(dead.attempts.map((a) => /broken on attempt (\d)/.exec(a.error!.detail)?.[1])).toEqual(['1', '2', '3']);

    const letters = (await (await p.api('GET', '/v1/functions/flaky/dead-letters')).json()) as { deadLetters: { id: string; attempts: number; error: { code: string }; bytes: number }[] };
    expect(letters.deadLetters).toEqual([expect.objectContaining({ id: accepted.id, attempts: 3, error: expect.objectContaining({ code: 'SKIFF_FN_FAILED' }), bytes: 7 })]);

    // The scheduler's metrics: each attempt by how it ended, the invocation dead, and the dead
    // letters kept against their limit (a gauge read from JetStream every few seconds).
    const attempts = (text: string, outcome: string) => metricSample(text, 'skiff_async_attempts_total', { faas_name: 'flaky', skiff_outcome: outcome });
    let metrics = '';
    await waitUntil(async () => metricSample((metrics = await scrape()), 'skiff_async_dead_letters') >= 1, 'the dead-letter gauge to count it', 20_000);
    expect([attempts(metrics, 'retried'), attempts(metrics, 'exhausted'), attempts(metrics, 'succeeded')]).toEqual([2, 1, 0]);
    expect(metricSample(metrics, 'skiff_async_dead_total', { faas_name: 'flaky' })).toBe(1);
    expect(metricSample(metrics, 'skiff_async_dead_letters_limit')).toBe(10_000);

    // Fixed and deployed again: the redrive runs the current version with the same body.
    expect((await p.deploy('flaky', ECHO, ['/bin/sh', '/function/handler.sh'], { asyncAttempts: 3, asyncBackoffMs: 50 })).status).toBe(200);
    const redriven = await p.api('POST', `/v1/functions/flaky/dead-letters/${accepted.id}/redrive`);
    expect(redriven.status).toBe(202);
    const done = await outcome(p, accepted.id);
    expect([done.status, resultText(done)]).toEqual(['succeeded', 'payload']);
    expect(((await (await p.api('GET', '/v1/functions/flaky/dead-letters')).json()) as { deadLetters: unknown[] }).deadLetters).toEqual([]);

    // Purge: another dead one, deleted.
    expect((await p.deploy('flaky', failing, ['/bin/sh', '/function/handler.sh'], { asyncAttempts: 1 })).status).toBe(200);
    const second = await accept(p, 'flaky', 'again');
    expect((await outcome(p, second.id)).status).toBe('dead');
    expect((await p.api('DELETE', `/v1/functions/flaky/dead-letters/${second.id}`)).status).toBe(204);
    expect((await p.api('DELETE', `/v1/functions/flaky/dead-letters/${second.id}`)).status).toBe(404);
    expect((await p.api('POST', `/v1/functions/flaky/dead-letters/${second.id}/redrive`)).status).toBe(404);
  });

  it('fails a bad request at once: a body the input schema refuses is 400 at accept, nothing queued', async () => {
    expect((await p.deploy('typed', ECHO, ['/bin/sh', '/function/handler.sh'], { inputSchema: { type: 'object', required: ['name'] } })).status).toBe(201);
    const res = await p.api('POST', '/v1/functions/typed/invoke', '{}', { ...ASYNC, 'content-type': 'application/json' });
    expect(res.status).toBe(400);
  });

  it('runs an invocation again, on a live worker, when the worker running it is killed with SIGKILL', async () => {
    const slow = script('sleep 3\ncat\n');
    expect((await p.deploy('slow', slow, ['/bin/sh', '/function/handler.sh'], { asyncBackoffMs: 50 })).status).toBe(201);
    const accepted = await accept(p, 'slow', 'survived');
    const running = await outcome(p, accepted.id, (r) => r.status === 'running');
    const nodeId = running.attempts[0]!.nodeId!;
    await waitUntil(async () => functionProcesses('slow').length > 0, 'the container of slow');
    await p.services.find((s) => s.name === `worker-${nodeId}`)!.kill();
    const done = await outcome(p, accepted.id);
    expect(done.status).toBe('succeeded');
    expect(resultText(done)).toBe('survived');
    expect(done.attempts[0]!.error?.code).toBe('SKIFF_WORKER_LOST');
    expect(done.attempts.at(-1)!.nodeId).not.toBe(nodeId);
  });

  it('with an Idempotency-Key, an effect made before the worker was killed with SIGKILL is applied once', async () => {
    // The killed worker's place is taken, so a live one is there for the second attempt.
    p.start('worker', { SKIFF_NODE_ID: 'node-c' }, 'worker-node-c');
    await p.buildNodeRuntime();
    // The function's effect is a line it prints (the worker writes it to its log, a file this
    // test owns) with the key and the attempt; the first attempt then hangs past the kill.
    const dir = mkdtempSync(join(tmpdir(), 'skiff-async-effect-'));
    writeFileSync(join(dir, 'index.mjs'), [
      'export default async (event, context) => {',
      '  console.log(`effect ${JSON.stringify({ key: context.idempotencyKey, attempt: context.attempt, amount: event.amount })}`);',
      '  if (context.attempt === 1) await new Promise((r) => setTimeout(r, 600_000));',
      '  return { applied: context.idempotencyKey, attempt: context.attempt };',
      '};',
      '',
    ].join('\n'));
    expect((await p.deployNode('pay', dir, { asyncBackoffMs: 50 })).status).toBe(201);
    const effects = () =>
      p.services
        .filter((s) => s.name.startsWith('worker-'))
        .flatMap((s) => readFileSync(join(p.dataDir, `${s.name}.log`), 'utf8').split('\n'))
        .map((line) => /"msg":"effect (\{.*\})"/.exec(line)?.[1])
        .filter((m): m is string => m !== undefined)
        .map((m) => JSON.parse(m.replace(/\\"/g, '"')) as { key: string; attempt: number; amount: number });

    const accepted = await accept(p, 'pay', '{"amount":42}', { 'idempotency-key': 'payment-9', 'content-type': 'application/json' });
    await waitUntil(async () => effects().length === 1, 'the first attempt to make its effect', 60_000);
    const nodeId = (await outcome(p, accepted.id, (r) => r.status === 'running')).attempts[0]!.nodeId!;
    await p.services.find((s) => s.name === `worker-${nodeId}`)!.kill();
    killFunctionProcesses('pay'); // the killed worker's container, hanging in its first attempt
    const done = await outcome(p, accepted.id);
    expect(done.status).toBe('succeeded');
    expect(done.attempts.map((a) => a.error?.code)).toEqual(['SKIFF_WORKER_LOST', undefined]);
    expect(JSON.parse(resultText(done))).toEqual({ applied: 'payment-9', attempt: 2 });
    // Both attempts made the effect, with the same key: a ledger that keeps one entry per key
    // (as payment APIs do) applied it once.
    const made = effects();
    expect(made).toEqual([{ key: 'payment-9', attempt: 1, amount: 42 }, { key: 'payment-9', attempt: 2, amount: 42 }]);
    const ledger = new Map(made.map((e) => [e.key, e.amount]));
    expect([...ledger]).toEqual([['payment-9', 42]]);
    // And the caller, asking again with the key, gets that one invocation.
    expect(await accept(p, 'pay', '{"amount":42}', { 'idempotency-key': 'payment-9', 'content-type': 'application/json' })).toMatchObject({ id: accepted.id, status: 'succeeded' });
  });
});

describe('async invocations while no worker runs', () => {
  let p: Platform;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    p.start('scheduler');
    await p.startGateway();
    p.start('worker', { SKIFF_NODE_ID: 'node-a' }, 'worker-node-a');
    await p.waitForNodes(['node-a']);
    expect((await p.deploy('echo', ECHO, ['/bin/sh', '/function/handler.sh'], { asyncAttempts: 1 })).status).toBe(201);
    expect((await p.deploy('doomed', ECHO, ['/bin/sh', '/function/handler.sh'])).status).toBe(201);
    await p.services.find((s) => s.name === 'worker-node-a')!.stop();
    await p.waitForNodes([]);
  });
  afterAll(async () => p?.close());

  it('keeps every accepted invocation queued, without spending its attempts, and runs each once a worker comes', async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await accept(p, 'echo', `waited ${i}`)).id);
    for (const id of ids) expect(((await (await p.api('GET', `/v1/invocations/${id}`)).json()) as InvocationView).status).toBe('queued');
    p.start('worker', { SKIFF_NODE_ID: 'node-b' }, 'worker-node-b');
    const done = await Promise.all(ids.map((id) => outcome(p, id)));
    expect(done.map((r) => [r.status, resultText(r)])).toEqual(ids.map((_, i) => ['succeeded', `waited ${i}`]));
    await p.services.find((s) => s.name === 'worker-node-b')!.stop();
    await p.waitForNodes([]);
  });

  it('ends the queued invocations of a function deleted meanwhile as failed, SKIFF_FN_DELETED', async () => {
    const ids = [(await accept(p, 'doomed', '1')).id, (await accept(p, 'doomed', '2')).id];
    expect((await p.api('DELETE', '/v1/functions/doomed')).status).toBe(204);
    for (const id of ids) {
      const r = (await (await p.api('GET', `/v1/invocations/${id}`)).json()) as InvocationView;
      expect([r.status, r.error?.code]).toEqual(['failed', 'SKIFF_FN_DELETED']);
    }
  });
});

describe('async invocations when JetStream cannot take them', () => {
  let p: Platform;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    // No scheduler: the gateway sets up the streams itself, and nothing takes from the queue.
    await p.startGateway({ SKIFF_ASYNC_MAX_QUEUED: '3' });
    await p.waitForAsync(); // a busy machine may take longer than the deploy
    expect((await p.deploy('echo', ECHO, ['/bin/sh', '/function/handler.sh'])).status).toBe(201);
  });
  afterAll(async () => p?.close());

  it('answers 503 SKIFF_QUEUE_FULL with Retry-After once the queue holds SKIFF_ASYNC_MAX_QUEUED', async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await accept(p, 'echo', `fits ${i}`)).id);
    const res = await p.api('POST', '/v1/functions/echo/invoke', 'one too many', ASYNC);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await res.json()).code).toBe('SKIFF_QUEUE_FULL');
    // What was accepted is still there, queued.
    for (const id of ids) expect(((await (await p.api('GET', `/v1/invocations/${id}`)).json()) as InvocationView).status).toBe('queued');
  });

  it('answers 503 with Retry-After, never 202, while NATS is down', async () => {
    // Accepted before (the test above): JetStream took those; now the server is gone.
    await p.nats.stop();
    const res = await p.api('POST', '/v1/functions/echo/invoke', 'lost?', ASYNC);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(['SKIFF_NATS_UNAVAILABLE', 'SKIFF_QUEUE_UNAVAILABLE']).toContain((await res.json()).code);
  });
});

describe('async invocations across a nats-server killed with SIGKILL', () => {
  let p: Platform;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.startAll('node-a');
    expect((await p.deploy('echo', ECHO, ['/bin/sh', '/function/handler.sh'], { concurrency: 4 })).status).toBe(201);
  });
  afterAll(async () => p?.close());

  it('completes every invocation that got 202; one that got 503, sent again with its key, runs once', async () => {
    const sent = 60;
    const answers: { key: string; status: number; id?: string }[] = [];
    const send = async (i: number) => {
      const key = `stream-${i}`;
      const res = await p.api('POST', '/v1/functions/echo/invoke', `body ${i}`, { ...ASYNC, 'idempotency-key': key }).catch(() => undefined);
      const body = res ? ((await res.json().catch(() => ({}))) as { id?: string }) : {};
      answers.push({ key, status: res?.status ?? 0, ...(body.id ? { id: body.id } : {}) });
    };
    for (let i = 0; i < sent; i++) {
      if (i === 20) void p.nats.crash(); // in the middle of the stream, with calls in flight
      await send(i);
    }
    const accepted = answers.filter((a) => a.status === 202);
    const refused = answers.filter((a) => a.status !== 202);
    expect(accepted.length).toBeGreaterThan(0);
    for (const a of refused) expect(a.status, a.key).toBe(503);
    // Every 202 completes, after the restart on the same store.
    for (const a of accepted) expect((await outcome(p, a.id!)).status, a.key).toBe('succeeded');
    // A refused one may have been stored all the same (its PubAck lost with the server): sent
    // again with its key, it is one invocation either way.
    for (const a of refused) {
      const again = await accept(p, 'echo', `body ${a.key.slice(7)}`, { 'idempotency-key': a.key });
      expect((await outcome(p, again.id)).status).toBe('succeeded');
    }
    const all: InvocationView[] = [];
    for (let cursor: string | undefined = '0'; cursor !== undefined; ) {
      const page = (await (await p.api('GET', `/v1/functions/echo/invocations?limit=25&cursor=${cursor}`)).json()) as { invocations: InvocationView[]; next?: string };
      all.push(...page.invocations);
      cursor = page.next;
    }
    expect(all.length).toBe(sent);
    expect(new Set(all.map((r) => r.idempotencyKey)).size).toBe(sent);
    expect(all.every((r) => r.status === 'succeeded' && r.attempts.length >= 1)).toBe(true);
    console.log(`nats-server killed after 20 of ${sent} async invocations: ${accepted.length} answered 202, ${refused.length} answered 503 (each sent again with its key)`);
  }, 240_000); // an invocation taken when the server died waits for its ack wait (10 s) to be offered again
});

describe('async invocations when the dead letters are full', () => {
  let p: Platform;
  let metricsPort: number;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    const env = { SKIFF_DEAD_LETTERS_MAX: '1' };
    metricsPort = await freePort();
    p.start('scheduler', { ...env, SKIFF_METRICS_PORT: String(metricsPort) });
    await p.startGateway(env);
    p.start('worker', { SKIFF_NODE_ID: 'node-a' }, 'worker-node-a');
    await p.waitForNodes(['node-a']);
    const failing = script('exit 1\n');
    expect((await p.deploy('doomed', failing, ['/bin/sh', '/function/handler.sh'], { asyncAttempts: 1 })).status).toBe(201);
  });
  afterAll(async () => p?.close());

  it('keeps an invocation out of attempts queued, with its reason, rather than drop it or a dead letter', async () => {
    const first = await accept(p, 'doomed', 'one');
    expect((await outcome(p, first.id)).status).toBe('dead');
    const second = await accept(p, 'doomed', 'two');
    const kept = await outcome(p, second.id, (r) => r.status === 'queued' && r.error?.code === 'SKIFF_QUEUE_FULL');
    expect(kept.attempts).toHaveLength(1);
    const letters = (await (await p.api('GET', '/v1/functions/doomed/dead-letters')).json()) as { deadLetters: { id: string }[] };
    expect(letters.deadLetters.map((d) => d.id)).toEqual([first.id]);
    expect(readFileSync(join(p.dataDir, 'scheduler.log'), 'utf8')).toContain('cannot keep the dead letter');
    // Seen in the metrics: the refusal, and the dead letters at their limit.
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metricSample(metrics, 'skiff_async_dead_letters_refused_total', { faas_name: 'doomed' })).toBeGreaterThanOrEqual(1);
    expect(metricSample(metrics, 'skiff_async_dead_letters_limit')).toBe(1);
  });
});
