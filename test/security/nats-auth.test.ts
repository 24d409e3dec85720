import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createInbox, type Msg, type NatsConnection } from '@nats-io/transport-node';
import {
  DEFAULT_SETTINGS,
  FUNCTION_NAME_PATTERN,
  INBOX_PREFIXES,
  JETSTREAM,
  SUBJECTS,
  decodeResult,
  encodeInvocation,
  newCallId,
  type Invocation,
  type NatsRole,
} from '@skiff/contracts';
import { natsCredentials } from '@skiff/cli';
import { Platform, REPO, startNats, waitUntil, type NatsServer } from '@skiff/testkit';

/**
 * docs/security.md #26 and #37, against a real nats-server configured as `skiff up` configures
 * its own. NATS reports a permission violation asynchronously, as an error on the connection
 * (publish) or on the subscription (subscribe); a refused action is seen as that error, an
 * allowed one as its message arriving.
 */

/** A connection as one service, with every permission violation the server sent it. */
class As {
  readonly refused: { operation: string; subject: string }[] = [];
  private constructor(readonly nc: NatsConnection) {}

  static async connect(nats: NatsServer, role: NatsRole): Promise<As> {
    const a = new As(await nats.connect(role));
    void (async () => {
      for await (const s of a.nc.status()) {
        if (s.type === 'error' && s.error.name === 'PermissionViolationError') {
          const pe = s.error as unknown as { operation: string; subject: string };
          a.refused.push({ operation: pe.operation, subject: pe.subject });
        }
      }
    })();
    return a;
  }

  /** Publishes, and waits for the server to refuse it. */
  async publishRefused(subject: string): Promise<void> {
    this.nc.publish(subject, 'forged');
    await this.nc.flush();
    await waitUntil(async () => this.has('publish', subject), `a publish violation for ${subject}`, 5000);
  }

  /** Subscribes, and waits for the server to refuse it. */
  async subscribeRefused(subject: string): Promise<void> {
    this.nc.subscribe(subject, { callback: () => {} });
    await this.nc.flush();
    await waitUntil(async () => this.has('subscription', subject), `a subscription violation for ${subject}`, 5000);
  }

  has(operation: string, subject: string): boolean {
    return this.refused.some((r) => r.operation === operation && r.subject === subject);
  }

  close(): Promise<void> {
    return this.nc.close();
  }
}

/** Waits for the first message on `subject` as seen by `listener`, after `send` ran. */
async function delivered(listener: NatsConnection, subject: string, send: () => void): Promise<Msg> {
  const sub = listener.subscribe(subject, { max: 1 });
  await listener.flush();
  send();
  for await (const m of sub) return m;
  throw new Error(`no message on ${subject}`);
}

/** A nats-server for the describe block this is called in, and connections to it as each role. */
function natsForThisBlock(): { as: (role: NatsRole) => Promise<As>; server: () => NatsServer } {
  let nats: NatsServer;
  const open: As[] = [];
  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => {
    await Promise.all(open.map((a) => a.close()));
    await nats?.stop();
  });
  const as = async (role: NatsRole) => {
    const a = await As.connect(nats, role);
    open.push(a);
    return a;
  };
  return { as, server: () => nats };
}

describe('NATS lets no one in: no anonymous client, each service only its own subjects (docs/security.md #26)', () => {
  const { as, server } = natsForThisBlock();


  it('refuses a client without credentials, one with a wrong password, and one with another service\'s user name', async () => {
    await expect(connect({ servers: server().url, reconnect: false })).rejects.toThrow(/Authorization Violation/i);
    const { user } = server().credentials.gateway;
    await expect(connect({ servers: server().url, reconnect: false, user, pass: 'not-the-password' })).rejects.toThrow(/Authorization Violation/i);
    await expect(connect({ servers: server().url, reconnect: false, user, pass: server().credentials.worker.password })).rejects.toThrow(/Authorization Violation/i);
    // The positive control: the same server lets the gateway in with its own password.
    const gw = await as('gateway');
    expect(gw.nc.isClosed()).toBe(false);
  });

  it("a worker's credentials cannot publish invocations, warm requests or function changes, nor read skiff.invoke or inboxes", async () => {
    const worker = await as('worker');
    await worker.publishRefused(SUBJECTS.invoke);
    await worker.publishRefused(SUBJECTS.nodeInvoke('node-a'));
    await worker.publishRefused(SUBJECTS.nodeWarm('node-a'));
    await worker.publishRefused(SUBJECTS.fnChanged);
    await worker.publishRefused(SUBJECTS.rollCall);
    await worker.publishRefused(SUBJECTS.health);
    await worker.publishRefused('skiff.anything.else');
    await worker.subscribeRefused(SUBJECTS.invoke);
    await worker.subscribeRefused(SUBJECTS.heartbeat);
    await worker.subscribeRefused('_INBOX.>');
    await worker.subscribeRefused('>');
    // What a worker must do still works: its heartbeat reaches a gateway.
    const gw = await as('gateway');
    const hb = await delivered(gw.nc, SUBJECTS.heartbeat, () => worker.nc.publish(SUBJECTS.heartbeat, 'beat'));
    expect(hb.string()).toBe('beat');
  });

  it('the gateway asks every scheduler and worker how they are, and each answers it', async () => {
    const [gw, worker, scheduler] = [await as('gateway'), await as('worker'), await as('scheduler')];
    for (const [who, id] of [[worker, 'node-a'], [scheduler, 'host:1']] as const) {
      who.nc.subscribe(SUBJECTS.health, { max: 1, callback: (_e, m) => void m.respond(id) });
      await who.nc.flush();
    }
    const answers: string[] = [];
    for await (const m of await gw.nc.requestMany(SUBJECTS.health, undefined, { strategy: 'timer', maxWait: 1000 })) answers.push(m.string());
    expect(answers.sort()).toEqual(['host:1', 'node-a']);
  });

  it("a worker answers only a request it received, never another inbox", async () => {
    const worker = await as('worker');
    const gw = await as('gateway');
    const sub = worker.nc.subscribe(SUBJECTS.nodeInvoke('node-a'), { max: 1, callback: (_e, m) => void m.respond('answer') });
    await worker.nc.flush();
    const reply = await gw.nc.request(SUBJECTS.nodeInvoke('node-a'), 'call', { timeout: 5000 });
    expect(reply.string()).toBe('answer');
    expect(sub.isClosed()).toBe(true);
    await worker.publishRefused(createInbox());
  });

  it('a worker answers a call that ran longer than two minutes (nats-server\'s default response window)', async () => {
    const worker = await as('worker');
    const gw = await as('gateway');
    const ranMs = 125_000;
    worker.nc.subscribe(SUBJECTS.nodeInvoke('node-long'), { max: 1, callback: (_e, m) => void setTimeout(() => m.respond('late answer'), ranMs) });
    await worker.nc.flush();
    const reply = await gw.nc.request(SUBJECTS.nodeInvoke('node-long'), 'call', { timeout: ranMs + 20_000 });
    expect(reply.string()).toBe('late answer');
    expect(worker.refused).toEqual([]);
  }, 180_000);

  it("the gateway's credentials cannot publish heartbeats or leaves, nor read invocations or function changes", async () => {
    const gw = await as('gateway');
    await gw.publishRefused(SUBJECTS.heartbeat);
    await gw.publishRefused(SUBJECTS.leave);
    await gw.publishRefused('skiff.anything.else');
    await gw.subscribeRefused(SUBJECTS.invoke);
    await gw.subscribeRefused(SUBJECTS.nodeInvoke('node-a'));
    await gw.subscribeRefused(SUBJECTS.fnChanged);
    await gw.subscribeRefused('skiff.>');
  });

  it("the scheduler's credentials cannot publish results on an inbox, heartbeats or function changes, nor read a node's invocations", async () => {
    const scheduler = await as('scheduler');
    await scheduler.publishRefused(SUBJECTS.invoke);
    await scheduler.publishRefused(createInbox());
    await scheduler.publishRefused(SUBJECTS.heartbeat);
    await scheduler.publishRefused(SUBJECTS.fnChanged);
    await scheduler.publishRefused(SUBJECTS.nodeWarm('node-a'));
    await scheduler.publishRefused(SUBJECTS.health);
    await scheduler.subscribeRefused(SUBJECTS.nodeInvoke('node-a'));
    await scheduler.subscribeRefused('_INBOX.>');
    // It still answers the gateway's placement request, once, on the request's own inbox.
    const gw = await as('gateway');
    const sub = scheduler.nc.subscribe(SUBJECTS.invoke, { max: 1, callback: (_e, m) => void m.respond('node-a') });
    await scheduler.nc.flush();
    const reply = await gw.nc.request(SUBJECTS.invoke, 'where?', { timeout: 5000 });
    expect(reply.string()).toBe('node-a');
    expect(sub.isClosed()).toBe(true);
  });
});

describe('trigger subjects and the events credential (docs/security.md #44)', () => {
  const { as } = natsForThisBlock();


  it("the scheduler reads any trigger subject, but not a node's invocations, inboxes, the queues or the server's subjects, even through `>`", async () => {
    const scheduler = await as('scheduler');
    for (const subject of [SUBJECTS.nodeInvoke('node-a'), SUBJECTS.nodeWarm('node-a'), '_INBOX.>', `${INBOX_PREFIXES.events}.>`, SUBJECTS.asyncInvocation('>'), SUBJECTS.record('>'), SUBJECTS.trigger('>'), SUBJECTS.tick('>'), '$JS.API.>', '$SYS.>']) {
      await scheduler.subscribeRefused(subject);
    }
    // A wildcard it may hold delivers nothing that the deny list covers.
    const got: string[] = [];
    scheduler.nc.subscribe('>', { callback: (_e, m) => void got.push(m.subject) });
    await scheduler.nc.flush();
    expect(scheduler.has('subscription', '>')).toBe(false);
    const gw = await as('gateway');
    const events = await as('events');
    gw.nc.publish(SUBJECTS.nodeInvoke('node-a'), 'a call');
    gw.nc.publish(SUBJECTS.fnChanged, 'changed');
    gw.nc.publish('_INBOX.someone', 'a result');
    await gw.nc.flush();
    events.nc.publish('orders.new', 'an event');
    await events.nc.flush();
    await waitUntil(async () => got.includes('orders.new'), 'the event on `>`', 5000);
    await scheduler.nc.flush();
    expect(got.filter((s) => s !== SUBJECTS.heartbeat && !s.startsWith('$JS.EVENT'))).toEqual(['orders.new']);
  });

  it('the events credential publishes on trigger subjects and reads its own replies, nothing of the platform', async () => {
    const events = await as('events');
    for (const subject of [SUBJECTS.invoke, SUBJECTS.asyncInvocation('x'), SUBJECTS.tick('x'), SUBJECTS.nodeInvoke('node-a'), '_INBOX.x', `${INBOX_PREFIXES.scheduler}.x`, '$JS.API.INFO', '$SYS.REQ.SERVER.PING', '$KV.x.y']) {
      await events.publishRefused(subject);
    }
    for (const subject of ['orders.new', '>', '_INBOX.>', SUBJECTS.heartbeat]) await events.subscribeRefused(subject);
    // It may publish an event, and a request's reply reaches it on its own inbox prefix.
    const scheduler = await as('scheduler');
    const sub = scheduler.nc.subscribe('orders.new', { max: 1, callback: (_e, m) => void m.respond(`got ${m.string()}`) });
    await scheduler.nc.flush();
    const reply = await events.nc.request('orders.new', 'order 1', { timeout: 5000 });
    expect(reply.string()).toBe('got order 1');
    expect(sub.isClosed()).toBe(true);
    expect(events.refused.filter((r) => r.subject === 'orders.new' && r.operation === 'publish')).toEqual([]);
  });

  it('is generated beside the services\' credentials, also for a data dir from before it existed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-nats-creds-'));
    try {
      const first = natsCredentials(dir);
      const file = join(dir, 'credentials.json');
      const { events: _dropped, ...older } = first;
      writeFileSync(file, JSON.stringify(older), { mode: 0o600 });
      const upgraded = natsCredentials(dir);
      expect(upgraded.gateway).toEqual(first.gateway);
      expect(upgraded.events.password).toMatch(/^[A-Za-z0-9_-]{16,}$/);
      expect(natsCredentials(dir).events).toEqual(upgraded.events);
      expect(statSync(file).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('destinations: the scheduler publishes outcome events on users\' subjects, nothing more of the platform (docs/security.md #46)', () => {
  const { as } = natsForThisBlock();

  it('the scheduler publishes on a destination subject', async () => {
    const scheduler = await as('scheduler');
    const listener = await as('scheduler');
    const m = await delivered(listener.nc, 'orders.done', () => scheduler.nc.publish('orders.done', 'outcome'));
    expect(m.string()).toBe('outcome');
    expect(scheduler.refused).toEqual([]);
  });

  it("still cannot publish the other services' subjects, write the triggers, reach an inbox or the server's subjects", async () => {
    const scheduler = await as('scheduler');
    for (const subject of [
      SUBJECTS.invoke,
      SUBJECTS.heartbeat,
      SUBJECTS.leave,
      SUBJECTS.fnChanged,
      SUBJECTS.nodesList,
      SUBJECTS.nodeWarm('node-a'),
      SUBJECTS.trigger('echo'),
      'skiff.anything',
      createInbox(),
      `${INBOX_PREFIXES.events}.x`,
      `${INBOX_PREFIXES.scheduler}.x`,
      '$SYS.REQ.SERVER.PING',
      '$KV.x.y',
      '$JS.EVENT.ADVISORY.x',
    ]) {
      await scheduler.publishRefused(subject);
    }
  });

  it("still cannot delete, purge or snapshot a stream, read the dead letters or the outbox directly, or remove the consumers", async () => {
    const scheduler = await as('scheduler');
    for (const subject of [
      `$JS.API.STREAM.DELETE.${JETSTREAM.outcomesStream}`,
      `$JS.API.STREAM.PURGE.${JETSTREAM.outcomesStream}`,
      `$JS.API.STREAM.MSG.DELETE.${JETSTREAM.recordsStream}`,
      `$JS.API.STREAM.MSG.GET.${JETSTREAM.deadStream}`,
      `$JS.API.STREAM.SNAPSHOT.${JETSTREAM.asyncStream}`,
      `$JS.API.STREAM.LIST`,
      `$JS.API.ACCOUNT.PURGE.x`,
      `$JS.API.DIRECT.GET.${JETSTREAM.deadStream}`,
      `$JS.API.DIRECT.GET.${JETSTREAM.outcomesStream}`,
      `$JS.API.CONSUMER.CREATE.${JETSTREAM.deadStream}`,
      `$JS.API.CONSUMER.DELETE.${JETSTREAM.asyncStream}.${JETSTREAM.asyncConsumer}`,
      `$JS.API.CONSUMER.DELETE.${JETSTREAM.outcomesStream}.${JETSTREAM.outcomesConsumer}`,
      `$JS.ACK.${JETSTREAM.deadStream}.x`,
    ]) {
      await scheduler.publishRefused(subject);
    }
  });

  it('the outbox is the scheduler\'s: the gateway and workers cannot write outcome events or take them off', async () => {
    const gw = await as('gateway');
    const worker = await as('worker');
    for (const a of [gw, worker]) {
      await a.publishRefused(SUBJECTS.outcome('url', '0123456789abcdef0123456789abcdef'));
      await a.publishRefused(`$JS.API.CONSUMER.MSG.NEXT.${JETSTREAM.outcomesStream}.${JETSTREAM.outcomesConsumer}`);
      await a.publishRefused(`$JS.ACK.${JETSTREAM.outcomesStream}.x`);
    }
  });
});

describe('JetStream behind the same locks (docs/security.md #18)', () => {
  const { as } = natsForThisBlock();
  const id = 'echo.0123456789abcdef0123456789abcdef';


  it('a worker can neither queue, record nor bury an async invocation, nor call the JetStream API', async () => {
    const worker = await as('worker');
    await worker.publishRefused(SUBJECTS.asyncInvocation(id));
    await worker.publishRefused(SUBJECTS.record(id));
    await worker.publishRefused(SUBJECTS.deadLetter(id));
    await worker.publishRefused(SUBJECTS.tick('echo'));
    await worker.publishRefused(`$JS.API.DIRECT.GET.${JETSTREAM.recordsStream}`);
    await worker.publishRefused(`$JS.API.STREAM.DELETE.${JETSTREAM.asyncStream}`);
    await worker.publishRefused(`$JS.API.CONSUMER.MSG.NEXT.${JETSTREAM.asyncStream}.${JETSTREAM.asyncConsumer}`);
  });

  it("the scheduler queues a schedule's ticks and notes the last one, but cannot write trigger entries, delete or purge a stream, or read replies but its own", async () => {
    const scheduler = await as('scheduler');
    // Schedules: a tick is an async invocation the scheduler queues (as it queues a durable
    // trigger's messages), and its last tick a note of its own.
    scheduler.nc.publish(SUBJECTS.asyncInvocation(id), 'tick');
    scheduler.nc.publish(SUBJECTS.tick('echo'), '{}');
    // Refused after them, in order: once this violation is in, theirs would have been too.
    await scheduler.publishRefused(SUBJECTS.trigger('echo'));
    expect(scheduler.has('publish', SUBJECTS.asyncInvocation(id))).toBe(false);
    expect(scheduler.has('publish', SUBJECTS.tick('echo'))).toBe(false);
    await scheduler.publishRefused(SUBJECTS.tick('echo.more'));
    await scheduler.publishRefused(`$JS.API.STREAM.DELETE.${JETSTREAM.asyncStream}`);
    await scheduler.publishRefused(`$JS.API.STREAM.PURGE.${JETSTREAM.schedulesStream}`);
    await scheduler.publishRefused(`$JS.API.STREAM.PURGE.${JETSTREAM.asyncStream}`);
    await scheduler.publishRefused(`$JS.API.STREAM.MSG.DELETE.${JETSTREAM.deadStream}`);
    await scheduler.subscribeRefused('_INBOX.>');
    // The positive control: its own inbox, where its JetStream answers come.
    const mine = scheduler.nc.subscribe(`${INBOX_PREFIXES.scheduler}.probe`, { callback: () => {} });
    await scheduler.nc.flush();
    expect(scheduler.has('subscription', `${INBOX_PREFIXES.scheduler}.probe`)).toBe(false);
    mine.unsubscribe();
  });

  it('the gateway cannot take invocations off the queue, bury them, or delete a stream', async () => {
    const gw = await as('gateway');
    await gw.publishRefused(`$JS.API.CONSUMER.MSG.NEXT.${JETSTREAM.asyncStream}.${JETSTREAM.asyncConsumer}`);
    await gw.publishRefused(`$JS.ACK.${JETSTREAM.asyncStream}.x`);
    await gw.publishRefused(SUBJECTS.deadLetter(id));
    await gw.publishRefused(`$JS.API.STREAM.DELETE.${JETSTREAM.asyncStream}`);
    await gw.publishRefused(`$JS.API.STREAM.DELETE.${JETSTREAM.recordsStream}`);
    // It removes durable trigger streams (any name but the platform's own): the deny list holds.
    await gw.publishRefused(`$JS.API.STREAM.DELETE.${JETSTREAM.deadStream}`);
    await gw.publishRefused(`$JS.API.STREAM.DELETE.${JETSTREAM.triggersStream}`);
    // Ticks are the schedulers' own: the gateway neither fakes a last tick nor reads them.
    await gw.publishRefused(SUBJECTS.tick('echo'));
    await gw.publishRefused(`$JS.API.DIRECT.GET.${JETSTREAM.schedulesStream}`);
  });
});

describe('generated NATS credentials (docs/security.md #26)', () => {
  it('are written with mode 0600, kept across restarts, and refused when others may read them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-nats-creds-'));
    try {
      const first = await startNats({ dir });
      const creds = first.credentials;
      for (const f of ['credentials.json', 'nats-server.conf']) expect((statSync(join(dir, f)).mode & 0o777).toString(8), f).toBe('600');
      await first.stop();

      const second = await startNats({ dir });
      expect(second.credentials).toEqual(creds);
      // The passwords from the first start still open the second server.
      const nc = await connect({ servers: second.url, reconnect: false, user: creds.worker.user, pass: creds.worker.password });
      await nc.close();
      await second.stop();

      chmodSync(join(dir, 'credentials.json'), 0o644);
      expect(() => natsCredentials(dir)).toThrow(/may be read by others/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('each service has a password of its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-nats-creds-'));
    try {
      const c = natsCredentials(dir);
      const passwords = new Set([c.gateway.password, c.scheduler.password, c.worker.password]);
      expect(passwords.size).toBe(3);
      expect(JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8'))).toEqual(c);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('every message field is checked on receipt, function names by the API\'s rule (docs/security.md #37)', () => {
  let p: Platform;
  let gw: NatsConnection;
  let invocation: Omit<Invocation, 'callId' | 'fn'>;
  const uidsFile = () => join(p.dataDir, 'nodes', 'node-a', 'uids.json');
  const ranges = () => (existsSync(uidsFile()) ? Object.keys(JSON.parse(readFileSync(uidsFile(), 'utf8')) as object) : []);

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.startAll('node-a');
    const res = await p.deploy('echo', join(REPO, 'functions/echo'), ['/bin/sh', '/function/handler.sh']);
    expect(res.status).toBe(201);
    const fn = (await res.json()) as { version: number; imageDigest: string };
    invocation = { deadline: 0, fnVersion: fn.version, image: fn.imageDigest, mode: 'exec', settings: DEFAULT_SETTINGS };
    // Anyone able to publish invocations has the gateway's rights; these are the gateway's credentials.
    gw = await p.nats.connect('gateway');
  });
  afterAll(async () => {
    await gw?.close();
    await p?.close();
  });

  const handMade = (subject: string, fn: string) =>
    gw.request(subject, 'hi', { timeout: 10_000, headers: encodeInvocation({ ...invocation, callId: newCallId(), fn, deadline: Date.now() + 8000 }) });

  it('the API and the messages use one function name rule', () => {
    const yaml = readFileSync(join(REPO, 'openapi/gateway.yaml'), 'utf8');
    expect(yaml).toContain(`pattern: '${FUNCTION_NAME_PATTERN.source}'`);
  });

  it('refuses a hand-made invocation for "../relesc" at the worker and at the scheduler, with a clear error and no uid range', async () => {
    const ok = await p.api('POST', '/v1/functions/echo/invoke', 'hello');
    expect(await ok.text()).toBe('hello');
    expect(ranges()).toEqual(['echo']); // the file the worker keeps its ranges in, read right

    const results = [];
    for (const subject of [SUBJECTS.nodeInvoke('node-a'), SUBJECTS.invoke]) {
      for (const fn of ['../relesc', 'Echo', 'a/b', `x${'a'.repeat(63)}`]) {
        const reply = await handMade(subject, fn);
        results.push({ subject, fn, result: decodeResult(reply.headers, reply.data) });
      }
    }
    expect(ranges()).toEqual(['echo']);
    for (const { subject, fn, result } of results) {
      expect(result.ok, `${subject} ${fn}`).toBe(false);
      if (result.ok) continue;
      expect(result.error.code, `${subject} ${fn}`).toBe('SKIFF_BAD_MESSAGE');
      expect(result.error.errors?.map((e) => e.field)).toEqual(['Skiff-Function']);
      expect(result.error.message).toMatch(/function name/);
    }
    // The same hand-made message with a good name runs: only the name was refused.
    const reply = await handMade(SUBJECTS.nodeInvoke('node-a'), 'echo');
    expect(decodeResult(reply.headers, reply.data)).toMatchObject({ ok: true });
  });

  it('refuses a version 0 and an image that is not a digest, naming the header', async () => {
    for (const [field, bad] of [
      ['Skiff-Function-Version', { fnVersion: 0 }],
      ['Skiff-Image', { image: '../../etc' }],
    ] as const) {
      const headers = encodeInvocation({ ...invocation, ...bad, callId: newCallId(), fn: 'echo', deadline: Date.now() + 8000 });
      const reply = await gw.request(SUBJECTS.nodeInvoke('node-a'), 'hi', { timeout: 10_000, headers });
      const result = decodeResult(reply.headers, reply.data);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error.errors?.map((e) => e.field)).toEqual([field]);
    }
  });
});
