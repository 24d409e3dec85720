import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { headers as natsHeaders, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { SUBJECTS } from '@skiff/contracts';
import { Platform, functionProcesses, killFunctionProcesses, waitUntil } from '@skiff/testkit';

/**
 * Subject triggers end to end: a real nats-server, two schedulers, a worker and containers. The
 * events are published with the events credential (the one `skiff up` prints), as a user would.
 */

/** A function directory with one shell script, `handler.sh`. */
function script(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-trigger-fn-'));
  writeFileSync(join(dir, 'handler.sh'), text);
  return dir;
}

const SH = ['/bin/sh', '/function/handler.sh'];
const jsonHeaders = () => {
  const h = natsHeaders();
  h.set('Content-Type', 'application/json');
  return h;
};
const MAX_BODY = 4096;

describe('subject triggers', () => {
  let p: Platform;
  let events: NatsConnection;

  /** Both schedulers subscribed to the function's subjects (their logs say so), or to none of them. */
  const triggerLog = (fn: string) =>
    ['scheduler-a', 'scheduler-b'].map((name) => readFileSync(join(p.dataDir, `${name}.log`), 'utf8').split('\n').filter((l) => /"msg":"subject triggers( removed)?"/.test(l) && l.includes(`"fn":"${fn}"`)).at(-1));
  const subscribed = (fn: string, subjects: string[]) =>
    waitUntil(async () => triggerLog(fn).every((last) => last !== undefined && last.includes('"subject triggers"') && subjects.every((s) => last.includes(JSON.stringify(s)))), `both schedulers on the subjects of ${fn}`, 30_000);
  const unsubscribed = (fn: string) => waitUntil(async () => triggerLog(fn).every((last) => last?.includes('"subject triggers removed"')), `both schedulers off the subjects of ${fn}`, 30_000);

  const request = (subject: string, body: string | Uint8Array, h?: Record<string, string>): Promise<Msg> => {
    const headers = natsHeaders();
    for (const [k, v] of Object.entries(h ?? {})) headers.set(k, v);
    return events.request(subject, body, { timeout: 30_000, ...(h ? { headers } : {}) });
  };

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.buildNodeRuntime();
    p.start('scheduler', { SKIFF_MAX_BODY_BYTES: String(MAX_BODY) }, 'scheduler-a');
    p.start('scheduler', { SKIFF_MAX_BODY_BYTES: String(MAX_BODY) }, 'scheduler-b');
    await p.startGateway();
    p.start('worker', { SKIFF_NODE_ID: 'node-a' }, 'worker-node-a');
    await p.waitForNodes(['node-a']);
    events = await p.nats.connect('events');
    const echo = script('echo "subject=$SKIFF_EVENT_SUBJECT id=$SKIFF_EVENT_ID"\ncat\n');
    expect((await p.deploy('on-order', echo, SH, { triggers: { subjects: ['orders.new', 'audit.*.created', 'logs.>'] } })).status).toBe(201);
    await subscribed('on-order', ['orders.new', 'audit.*.created', 'logs.>']);
  }, 180_000);
  afterAll(async () => {
    await events?.close();
    await p?.close();
  });

  it("nc.request('orders.new') gets the function's result, and the function sees the event's subject and id", async () => {
    const reply = await request('orders.new', '{"order":1}');
    expect(reply.headers?.get('Skiff-Error') ?? '').toBe('');
    const [first, rest] = [reply.string().split('\n')[0]!, reply.string().split('\n').slice(1).join('\n')];
    expect(first).toMatch(/^subject=orders\.new id=[A-Za-z0-9._-]+$/);
    expect(rest).toBe('{"order":1}');
    // Each event has an id of its own.
    const again = await request('orders.new', 'x');
    expect(again.string().split('\n')[0]).not.toBe(first);
  });

  it('runs the function for subjects matching a wildcard trigger (* and >)', async () => {
    expect((await request('audit.users.created', 'a')).string()).toMatch(/^subject=audit\.users\.created id=\S+\na$/);
    expect((await request('logs.eu.web.1', 'b')).string()).toMatch(/^subject=logs\.eu\.web\.1 id=\S+\nb$/);
    // `*` is one token: audit.created and audit.a.b.created are not the function's.
    await expect(request('audit.a.b.created', 'c')).rejects.toThrow(/no responders/i);
  });

  it("a failing function's reply carries Skiff-Error with the code, its body the problem's detail", async () => {
    const dir = script('echo "no stock for $SKIFF_EVENT_SUBJECT" >&2\nexit 3\n');
    expect((await p.deploy('refuses', dir, SH, { triggers: { subjects: ['stock.check'] } })).status).toBe(201);
    await subscribed('refuses', ['stock.check']);
    const reply = await request('stock.check', 'x');
    expect(reply.headers?.get('Skiff-Error')).toBe('SKIFF_FN_FAILED');
    expect(reply.string()).toContain('no stock for stock.check');
  });

  it('runs each message once across two schedulers, with or without a reply subject (a node function counts its calls)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-trigger-node-'));
    writeFileSync(join(dir, 'index.mjs'), 'let calls = 0;\nexport default async (event, context) => ({ calls: ++calls, subject: context.event.subject, id: context.event.id, order: context.event.headers["X-Order"], event });\n');
    expect((await p.deployNode('counter', dir, { maxInstances: 1, concurrency: 1, triggers: { subjects: ['count.*'] } })).status).toBe(201);
    await subscribed('counter', ['count.*']);
    const n = 20;
    const seen: number[] = [];
    for (let i = 0; i < n; i++) {
      const reply = await request(`count.${i}`, JSON.stringify({ i }), { 'Content-Type': 'application/json', 'X-Order': String(i) });
      expect(reply.headers?.get('Skiff-Error') ?? '', reply.string()).toBe('');
      const out = JSON.parse(reply.string()) as { calls: number; subject: string; id: string; order: string[]; event: { i: number } };
      expect(out).toMatchObject({ subject: `count.${i}`, order: [String(i)], event: { i } });
      seen.push(out.calls);
    }
    // One instance, one call per message: a message run by both schedulers would skip a count.
    expect(seen).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    // Messages without a reply subject run it too, once each: the count runs 5 ahead of the requests.
    for (let i = 0; i < 5; i++) events.publish(`count.quiet${i}`, '{}', { headers: jsonHeaders() });
    await events.flush();
    let requests = n;
    const ahead: number[] = [];
    await waitUntil(async () => {
      const out = JSON.parse((await request('count.probe', '{}', { 'Content-Type': 'application/json' })).string()) as { calls: number };
      ahead.push(out.calls - ++requests);
      return ahead.at(-1) === 5;
    }, 'the five quiet messages to run', 20_000);
    expect(Math.max(...ahead)).toBe(5);
    // Both schedulers took part (a queue group, not one scheduler alone).
    const ran = (name: string) => readFileSync(join(p.dataDir, `${name}.log`), 'utf8');
    expect(ran('scheduler-a')).toContain('"subject triggers"');
    expect(ran('scheduler-b')).toContain('"subject triggers"');
  });

  it('drops a message whose body is over the body limit, with an error reply', async () => {
    const reply = await request('orders.new', new Uint8Array(MAX_BODY + 1));
    expect(reply.headers?.get('Skiff-Error')).toBe('SKIFF_BODY_TOO_LARGE');
    const ok = await request('orders.new', new Uint8Array(MAX_BODY - 1));
    expect(ok.headers?.get('Skiff-Error') ?? '').toBe('');
  });

  it('refuses subjects of the platform and nats-server, bad subjects and too many, naming the field', async () => {
    for (const subject of ['skiff.invoke', 'skiff.>', '_INBOX.x', '_INBOX_SCHEDULER.x', '$JS.API.INFO', '$SYS.>', '*.created', '>', 'a..b', 'a.>.b', 'a b', 'x'.repeat(257)]) {
      const res = await p.api('PUT', '/v1/functions/bad-trigger', { image: 'busybox:latest', triggers: { subjects: ['fine.one', subject] } });
      expect(res.status, subject).toBe(400);
      const problem = (await res.json()) as { code: string; errors?: { field: string }[] };
      expect(problem.code, subject).toBe('SKIFF_VALIDATION_FAILED');
      expect(JSON.stringify(problem.errors), subject).toContain('triggers');
    }
    const many = Array.from({ length: 17 }, (_, i) => `many.s${i}`);
    expect((await p.api('PUT', '/v1/functions/bad-trigger', { image: 'busybox:latest', triggers: { subjects: many } })).status).toBe(400);
    expect((await p.api('GET', '/v1/functions/bad-trigger')).status).toBe(404);
  });

  it('refuses a subject another function has with 409 SKIFF_TRIGGER_TAKEN', async () => {
    const res = await p.api('PUT', '/v1/functions/thief', { image: 'busybox:latest', triggers: { subjects: ['mine.only', 'orders.new'] } });
    expect(res.status).toBe(409);
    const problem = (await res.json()) as { code: string; errors: { field: string }[] };
    expect(problem.code).toBe('SKIFF_TRIGGER_TAKEN');
    expect(problem.errors[0]!.field).toBe('body.triggers.subjects.1');
    // The function that has it shows it.
    const owner = (await (await p.api('GET', '/v1/functions/on-order')).json()) as { triggers?: { subjects: string[] } };
    expect(owner.triggers?.subjects).toContain('orders.new');
  });

  it("does not answer on a reply subject of the platform (a forged result on a service's inbox)", async () => {
    const gateway = await p.nats.connect('gateway');
    try {
      const got: Msg[] = [];
      gateway.subscribe('_INBOX.forged', { callback: (_e, m) => void got.push(m) });
      await gateway.flush();
      const calls = async () => (JSON.parse((await request('count.probe', '{}', { 'Content-Type': 'application/json' })).string()) as { calls: number }).calls;
      const before = await calls();
      events.publish('count.forged', '{}', { reply: '_INBOX.forged', headers: jsonHeaders() });
      await events.flush();
      // The counter (deployed above) runs it: once it has, its answer would have been sent.
      let probes = 0;
      await waitUntil(async () => (await calls()) === before + ++probes + 1, 'the forged-reply message to run', 20_000);
      await gateway.flush();
      expect(got).toHaveLength(0);
    } finally {
      await gateway.close();
    }
  });

  it("a gateway start writes every function's entry (a lost one comes back) and empties those of functions it no longer has", async () => {
    const gw = await p.nats.connect('gateway');
    try {
      const js = jetstream(gw);
      // An entry lost (as with a fresh JetStream store), and one of a function the registry does not have.
      await js.publish(SUBJECTS.trigger('on-order'), new Uint8Array(0));
      const ghost = { fn: 'ghost', fnVersion: 1, image: `sha256:${'0'.repeat(64)}`, mode: 'exec', settings: 'memoryMb=128;cpus=1;maxProcesses=64;tmpMb=64;concurrency=1;minInstances=0;maxInstances=10;idleTimeoutMs=300000;asyncAttempts=3;asyncBackoffMs=1000;asyncBackoffCapMs=300000;asyncMaxAgeMs=21600000', timeoutMs: 1000, subjects: ['ghost.calls'] };
      await js.publish(SUBJECTS.trigger('ghost'), JSON.stringify(ghost));
      await unsubscribed('on-order');
      await subscribed('ghost', ['ghost.calls']);
      await expect(request('orders.new', 'x')).rejects.toThrow(/no responders/i);
    } finally {
      await gw.close();
    }
    const old = p.services.find((s) => s.name === 'gateway')!;
    await old.stop();
    p.services.splice(p.services.indexOf(old), 1);
    await p.startGateway();
    await subscribed('on-order', ['orders.new', 'audit.*.created', 'logs.>']);
    await unsubscribed('ghost');
    expect((await request('orders.new', 'back')).string()).toMatch(/back$/);
    await expect(request('ghost.calls', 'x')).rejects.toThrow(/no responders/i);
  }, 120_000); // a gateway restart, slow on a busy machine

  it('stops running the function once it is deleted', async () => {
    expect((await p.api('DELETE', '/v1/functions/refuses')).status).toBe(204);
    await unsubscribed('refuses');
    await expect(request('stock.check', 'x')).rejects.toThrow(/no responders/i);
  });
});

describe('a triggered call whose worker is killed with SIGKILL', () => {
  let p: Platform;
  let events: NatsConnection;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    p.start('scheduler');
    await p.startGateway();
    p.start('worker', { SKIFF_NODE_ID: 'node-a' }, 'worker-node-a');
    await p.waitForNodes(['node-a']);
    events = await p.nats.connect('events');
    // A deadline of 15 minutes, past the test's own timeout: an answer at all did not wait for it.
    expect((await p.deploy('slow-job', script('sleep 600\n'), SH, { timeoutMs: 900_000, triggers: { subjects: ['jobs.slow'] } })).status).toBe(201);
    await waitUntil(async () => readFileSync(join(p.dataDir, 'scheduler.log'), 'utf8').includes('"fn":"slow-job"'), 'the scheduler on jobs.slow', 30_000);
  }, 180_000);
  afterAll(async () => {
    killFunctionProcesses('slow-job');
    await events?.close();
    await p?.close();
  });

  it('answers the request with Skiff-Error SKIFF_WORKER_LOST once the node is lost, not at the deadline', async () => {
    const reply = events.request('jobs.slow', 'x', { timeout: 120_000 });
    await waitUntil(async () => functionProcesses('slow-job').length > 0, 'a container of slow-job', 30_000);
    await p.services.find((s) => s.name === 'worker-node-a')!.kill();
    expect((await reply).headers?.get('Skiff-Error')).toBe('SKIFF_WORKER_LOST');
  });
});
