import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { JETSTREAM, SUBJECTS } from '@skiff/contracts';
import { Platform, REPO, freePort, waitUntil } from '@skiff/testkit';

/**
 * Destinations of async outcomes end to end: a real nats-server, scheduler, worker and
 * containers, an HTTP receiver on 127.0.0.1 and a NATS subscriber. Every wait is for an event
 * to arrive (or a line in the scheduler's log), never for a time.
 */
const ECHO = join(REPO, 'functions/echo');
const SH = ['/bin/sh', '/function/handler.sh'];
const ASYNC = { prefer: 'respond-async' };
/** Quick retries, so a suite waits seconds, not minutes, for a receiver that comes back. */
const FAST_RETRIES = { SKIFF_DESTINATION_BACKOFF_MS: '100', SKIFF_DESTINATION_BACKOFF_CAP_MS: '1000', SKIFF_DESTINATION_ATTEMPTS: '30' };

interface OutcomeEvent {
  specversion: string;
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: string;
  data: { id: string; status: string; idempotencyKey?: string; result?: { body?: string }; error?: { code: string }; attempts: unknown[] };
}

interface Post {
  status: number;
  headers: IncomingHttpHeaders;
  event: OutcomeEvent;
}

/** An HTTP receiver that answers `failure` (500) to the first `failFirst` posts and 204 after; it records every post. */
class Receiver {
  readonly posts: Post[] = [];
  private server: Server | undefined;
  constructor(
    readonly port: number,
    private failFirst = 0,
    private failure: { status: number; headers?: Record<string, string> } = { status: 500 },
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async listen(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const failing = this.posts.length < this.failFirst;
        const status = failing ? this.failure.status : 204;
        this.posts.push({ status, headers: req.headers, event: JSON.parse(Buffer.concat(chunks).toString()) as OutcomeEvent });
        res.writeHead(status, failing ? this.failure.headers : undefined).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    return this;
  }

  accepted(eventId?: string): Post[] {
    return this.posts.filter((p) => p.status === 204 && (eventId === undefined || p.event.id === eventId));
  }

  async close(): Promise<void> {
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

function script(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-dest-fn-'));
  writeFileSync(join(dir, 'handler.sh'), text);
  return dir;
}

async function accept(p: Platform, fn: string, body: string): Promise<string> {
  const res = await p.api('POST', `/v1/functions/${fn}/invoke`, body, ASYNC);
  expect(res.status, await res.clone().text()).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function record(p: Platform, id: string): Promise<OutcomeEvent['data']> {
  return (await (await p.api('GET', `/v1/invocations/${id}`)).json()) as OutcomeEvent['data'];
}

/** The next message on a subscription, as an outcome event with its Content-Type. */
async function nextEvent(sub: Subscription): Promise<{ event: OutcomeEvent; contentType: string | undefined }> {
  for await (const m of sub) return { event: m.json<OutcomeEvent>(), contentType: m.headers?.get('Content-Type') };
  throw new Error('subscription closed');
}

const schedulerLog = (p: Platform) => (existsSync(join(p.dataDir, 'scheduler.log')) ? readFileSync(join(p.dataDir, 'scheduler.log'), 'utf8') : '');

describe('destinations of async outcomes', () => {
  let p: Platform;
  let listener: NatsConnection;
  const receivers: Receiver[] = [];
  const receiver = async (failFirst = 0) => {
    const r = await new Receiver(await freePort(), failFirst).listen();
    receivers.push(r);
    return r;
  };

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    p.start('scheduler', FAST_RETRIES);
    p.start('worker', { SKIFF_NODE_ID: 'node-a' }, 'worker-node-a');
    await p.startGateway();
    await p.waitForNodes(['node-a']);
    // The scheduler's credentials read users' subjects (the trigger subjects are theirs too).
    listener = await p.nats.connect('scheduler');
  });
  afterAll(async () => {
    await listener?.close();
    await Promise.all(receivers.map((r) => r.close()));
    await p?.close();
  });

  it('refuses bad destinations with 400 naming the field, and deploys nothing', async () => {
    const cases: [unknown, string][] = [
      [{ subject: 'orders.*' }, 'destinations.subject'],
      [{ subject: 'orders.>' }, 'destinations.subject'],
      [{ subject: 'skiff.invoke' }, 'destinations.subject'],
      [{ subject: '_INBOX.x' }, 'destinations.subject'],
      [{ subject: '$JS.API.INFO' }, 'destinations.subject'],
      [{ url: 'ftp://example.com/hook' }, 'destinations.url'],
      [{ url: 'file:///etc/passwd' }, 'destinations.url'],
      [{ url: '/relative/hook' }, 'destinations.url'],
      [{ url: 'https://user:secret@example.com/hook' }, 'destinations.url'],
      [{ url: `https://example.com/${'a'.repeat(2048)}` }, 'destinations.url'],
      [{}, 'destinations'],
      [{ subject: 'orders.done', other: 'x' }, 'destinations'],
    ];
    for (const [destinations, field] of cases) {
      const res = await p.api('PUT', '/v1/functions/bad-dest', { image: 'busybox:latest', destinations });
      const problem = (await res.json()) as { code: string; errors?: { field: string }[] };
      expect(res.status, JSON.stringify(destinations)).toBe(400);
      expect(problem.code).toBe('SKIFF_VALIDATION_FAILED');
      expect(JSON.stringify(problem.errors), JSON.stringify(destinations)).toContain(field);
    }
    expect((await p.api('GET', '/v1/functions/bad-dest')).status).toBe(404);
  });

  it('POSTs the success event to the callback URL, retried after 500s until one 2xx, the same event id each time', async () => {
    const hook = await receiver(2);
    const res = await p.deploy('echo-hook', ECHO, SH, { destinations: { url: hook.url } });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { destinations: unknown }).destinations).toEqual({ url: hook.url });
    const id = await accept(p, 'echo-hook', 'hello hook');
    await waitUntil(async () => hook.accepted().length === 1, 'the callback accepted', 60_000);
    expect(hook.posts.map((x) => x.status)).toEqual([500, 500, 204]);
    const { event, headers } = hook.accepted()[0]!;
    expect(headers['content-type']).toBe('application/cloudevents+json');
    expect(event).toMatchObject({ specversion: '1.0', type: 'dev.skiff.invocation.succeeded', source: '/v1/functions/echo-hook', subject: id, datacontenttype: 'application/json' });
    expect(event.id).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(hook.posts.map((x) => x.event.id))).toEqual(new Set([event.id]));
    // The data is the invocation as the API shows it.
    expect(event.data).toEqual(await record(p, id));
    expect(Buffer.from(event.data.result!.body!, 'base64').toString()).toBe('hello hook');
    expect(event.time).toBe((event.data as unknown as { updatedAt: string }).updatedAt);

    // A second invocation: its own event id, again one accepted post for it.
    const second = await accept(p, 'echo-hook', 'again');
    await waitUntil(async () => hook.accepted().some((x) => x.event.subject === second), 'the second callback', 60_000);
    const ids = hook.accepted().map((x) => x.event.id);
    expect(ids).toHaveLength(2);
    expect(new Set(ids).size).toBe(2);
  });

  it('does not follow a redirect: a 307 is a failed attempt, tried again at the URL deployed', async () => {
    const elsewhere = await receiver();
    const hook = new Receiver(await freePort(), 1, { status: 307, headers: { location: elsewhere.url } });
    receivers.push(await hook.listen());
    expect((await p.deploy('echo-redirected', ECHO, SH, { destinations: { url: hook.url } })).status).toBe(201);
    await accept(p, 'echo-redirected', 'stay');
    await waitUntil(async () => hook.accepted().length === 1, 'the callback at the URL deployed', 60_000);
    expect(hook.posts.map((x) => x.status)).toEqual([307, 204]);
    expect(elsewhere.posts).toEqual([]);
  });

  it('publishes the success event on the destination subject, and the dead event of a function that always fails', async () => {
    const done = listener.subscribe('orders.done', { max: 1 });
    const failed = listener.subscribe('orders.failed', { max: 1 });
    await listener.flush();
    expect((await p.deploy('echo-subject', ECHO, SH, { destinations: { subject: 'orders.done' } })).status).toBe(201);
    const broken = script('echo broken >&2\nexit 3\n');
    expect((await p.deploy('always-fails', broken, SH, { asyncAttempts: 1, destinations: { subject: 'orders.failed' } })).status).toBe(201);

    const okId = await accept(p, 'echo-subject', 'to a subject');
    const ok = await nextEvent(done);
    expect(ok.contentType).toBe('application/cloudevents+json');
    expect(ok.event).toMatchObject({ specversion: '1.0', type: 'dev.skiff.invocation.succeeded', subject: okId, source: '/v1/functions/echo-subject' });
    expect(ok.event.data).toEqual(await record(p, okId));

    const badId = await accept(p, 'always-fails', 'x');
    const bad = await nextEvent(failed);
    expect(bad.event).toMatchObject({ type: 'dev.skiff.invocation.dead', subject: badId, source: '/v1/functions/always-fails', data: { status: 'dead', error: { code: 'SKIFF_FN_FAILED' } } });
    expect(bad.event.data.attempts).toHaveLength(1);
  });

  it('tells the schedulers the destinations with the trigger entry, for invocations they queue themselves', async () => {
    const gw = await p.nats.connect('gateway');
    try {
      const jsm = await jetstreamManager(gw);
      const entry = await jsm.direct.getMessage(JETSTREAM.triggersStream, { last_by_subj: SUBJECTS.trigger('echo-subject') });
      expect(entry?.json<{ destinations?: unknown }>().destinations).toEqual({ subject: 'orders.done' });
    } finally {
      await gw.close();
    }
  });

  it('sends the outcome of an invocation a durable trigger queued, with the destinations of its trigger entry', async () => {
    const hook = await receiver();
    const res = await p.deploy('on-shipment', ECHO, SH, { triggers: { subjects: ['shipments.new'], durable: true }, destinations: { url: hook.url } });
    expect(res.status, await res.clone().text()).toBe(201);
    const events = await p.nats.connect('events');
    try {
      await waitUntil(async () => (await jetstream(events).publish('shipments.new', 'parcel 7').then(() => true).catch(() => false)), 'the durable trigger stream', 30_000);
    } finally {
      await events.close();
    }
    await waitUntil(async () => hook.accepted().length === 1, 'the durable invocation outcome', 60_000);
    const { event } = hook.accepted()[0]!;
    expect(event).toMatchObject({ type: 'dev.skiff.invocation.succeeded', source: '/v1/functions/on-shipment' });
    expect(event.subject.startsWith('on-shipment.')).toBe(true);
    expect(Buffer.from(event.data.result!.body!, 'base64').toString()).toBe('parcel 7');
  });

  it("sends the outcome of a scheduled tick, with the destinations of its trigger entry", async () => {
    const ticks = listener.subscribe('ticks.done', { max: 1 });
    await listener.flush();
    const res = await p.deploy('every-second', ECHO, SH, { triggers: { schedule: '* * * * * *' }, destinations: { subject: 'ticks.done' } });
    expect(res.status, await res.clone().text()).toBe(201);
    const { event } = await nextEvent(ticks);
    expect(event).toMatchObject({ type: 'dev.skiff.invocation.succeeded', source: '/v1/functions/every-second' });
    expect(event.data.idempotencyKey).toMatch(/^schedule:/);
    expect(JSON.parse(Buffer.from(event.data.result!.body!, 'base64').toString())).toMatchObject({ cron: '* * * * * *', catchUp: false });
    expect((await p.api('DELETE', '/v1/functions/every-second')).status).toBe(204);
  });

  it("sends a redriven invocation's outcome to the function's current destinations", async () => {
    const first = await receiver();
    const second = await receiver();
    const broken = script('exit 3\n');
    expect((await p.deploy('redriven', broken, SH, { asyncAttempts: 1, destinations: { url: first.url } })).status).toBe(201);
    const id = await accept(p, 'redriven', 'payload');
    await waitUntil(async () => first.accepted().length === 1, 'the dead event', 60_000);
    expect(first.accepted()[0]!.event.type).toBe('dev.skiff.invocation.dead');
    expect((await p.deploy('redriven', ECHO, SH, { asyncAttempts: 1, destinations: { url: second.url } })).status).toBe(200);
    expect((await p.api('POST', `/v1/functions/redriven/dead-letters/${id}/redrive`)).status).toBe(202);
    await waitUntil(async () => second.accepted().length === 1, 'the success event at the new URL', 60_000);
    expect(second.accepted()[0]!.event).toMatchObject({ type: 'dev.skiff.invocation.succeeded', subject: id });
    expect(second.accepted()[0]!.event.id).not.toBe(first.accepted()[0]!.event.id);
    expect(first.posts).toHaveLength(1);
  });

  it('keeps an outcome while the receiver is down, across a scheduler killed meanwhile, and delivers it once the receiver is up', async () => {
    const later = new Receiver(await freePort());
    receivers.push(later);
    expect((await p.deploy('echo-later', ECHO, SH, { destinations: { url: later.url } })).status).toBe(201);
    const id = await accept(p, 'echo-later', 'kept');
    await waitUntil(async () => (await record(p, id)).status === 'succeeded', 'the outcome', 60_000);
    // At least one attempt found nobody listening.
    await waitUntil(async () => schedulerLog(p).split('\n').some((line) => line.includes('outcome event not delivered') && line.includes(later.url)), 'a failed attempt in the scheduler log', 30_000);
    await p.services.find((s) => s.name === 'scheduler')!.kill();
    p.start('scheduler', FAST_RETRIES, 'scheduler-2');
    await later.listen();
    await waitUntil(async () => later.accepted().length === 1, 'the kept outcome', 60_000);
    expect(later.accepted()[0]!.event).toMatchObject({ type: 'dev.skiff.invocation.succeeded', subject: id });
  });
});

describe('a destination that never accepts', () => {
  let p: Platform;
  let never: Receiver;
  let metricsUrl: string;
  /** skiff.destination.deliveries by outcome, as the scheduler's Prometheus endpoint shows them. */
  const deliveries = async (outcome: string): Promise<number> => {
    const text = await (await fetch(metricsUrl)).text();
    const line = text.split('\n').find((l) => l.startsWith('skiff_destination_deliveries_total{') && l.includes(`skiff_destination_outcome="${outcome}"`));
    return line ? Number(line.split(' ').at(-1)) : 0;
  };

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    const metricsPort = await freePort();
    metricsUrl = `http://127.0.0.1:${metricsPort}/metrics`;
    p.start('scheduler', { ...FAST_RETRIES, SKIFF_DESTINATION_ATTEMPTS: '3', SKIFF_METRICS_PORT: String(metricsPort) });
    p.start('worker', { SKIFF_NODE_ID: 'node-a' }, 'worker-node-a');
    await p.startGateway();
    await p.waitForNodes(['node-a']);
    never = await new Receiver(await freePort(), Number.MAX_SAFE_INTEGER).listen();
  });
  afterAll(async () => {
    await never?.close();
    await p?.close();
  });

  it('gets the event SKIFF_DESTINATION_ATTEMPTS times; then it is logged at error, counted and removed from the outbox', async () => {
    expect((await p.deploy('echo-never', ECHO, SH, { destinations: { url: never.url } })).status).toBe(201);
    const id = await accept(p, 'echo-never', 'lost on purpose');
    await waitUntil(async () => schedulerLog(p).split('\n').some((line) => line.includes('dropped after its last attempt') && line.includes(never.url)), 'the drop in the scheduler log', 60_000);
    const line = JSON.parse(schedulerLog(p).split('\n').find((l) => l.includes('dropped after its last attempt'))!) as { level: number; attempts: number };
    expect(line).toMatchObject({ level: 50, attempts: 3 });
    expect(never.posts.map((x) => [x.status, x.event.subject])).toEqual([
      [500, id],
      [500, id],
      [500, id],
    ]);
    const gw = await p.nats.connect('gateway');
    try {
      const info = await (await jetstreamManager(gw)).streams.info(JETSTREAM.outcomesStream);
      expect(info.state.messages).toBe(0);
    } finally {
      await gw.close();
    }
    await waitUntil(async () => (await deliveries('dropped')) === 1, 'the drop counted', 30_000);
    expect([await deliveries('retried'), await deliveries('delivered')]).toEqual([2, 0]);
  });

  it('counts a delivered event', async () => {
    const ok = await new Receiver(await freePort()).listen();
    try {
      expect((await p.deploy('echo-counted', ECHO, SH, { destinations: { url: ok.url } })).status).toBe(201);
      await accept(p, 'echo-counted', 'counted');
      await waitUntil(async () => ok.accepted().length === 1, 'the callback', 60_000);
      await waitUntil(async () => (await deliveries('delivered')) === 1, 'the delivery counted', 30_000);
    } finally {
      await ok.close();
    }
  });
});
