import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { durableTriggerStream } from '@skiff/contracts';
import { Platform, waitUntil, type Service } from '@skiff/testkit';

/**
 * Durable subject triggers end to end: a real nats-server with JetStream, two schedulers, a
 * worker and containers. Events are published with the events credential, as a user would, and
 * wait in JetStream while no worker, or no scheduler, runs.
 */

interface InvocationView {
  id: string;
  status: string;
  attempts: { attempt: number; error?: { code: string } }[];
  result?: { body?: string };
}

/** A function directory with one shell script, `handler.sh`. */
function script(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-durable-fn-'));
  writeFileSync(join(dir, 'handler.sh'), text);
  return dir;
}

const SH = ['/bin/sh', '/function/handler.sh'];
const resultText = (r: InvocationView) => Buffer.from(r.result?.body ?? '', 'base64').toString();

describe('durable subject triggers', () => {
  let p: Platform;
  let events: NatsConnection;
  let schedulers: Service[];
  let worker: Service;

  const startWorker = () => (worker = p.start('worker', { SKIFF_NODE_ID: 'node-a' }, 'worker-node-a'));
  const startSchedulers = () => (schedulers = ['scheduler-a', 'scheduler-b'].map((name) => p.start('scheduler', {}, name)));

  /** The function's invocations, until `want` holds for them. */
  const invocationsOf = async (fn: string, want: (all: InvocationView[]) => boolean, what: string): Promise<InvocationView[]> => {
    let all: InvocationView[] = [];
    await waitUntil(async () => {
      const res = await p.api('GET', `/v1/functions/${fn}/invocations?limit=100`);
      if (res.status !== 200) return false;
      all = ((await res.json()) as { invocations: InvocationView[] }).invocations;
      return want(all);
    }, what, 90_000);
    return all;
  };
  const succeeded = (n: number) => (all: InvocationView[]) => all.length === n && all.every((r) => r.status === 'succeeded');

  /** Publishes as a JetStream client does: resolves with the PubAck, i.e. once the message is stored. */
  const publish = (subject: string, body: string, h: Record<string, string> = {}) => {
    const headers = natsHeaders();
    for (const [k, v] of Object.entries(h)) headers.set(k, v);
    return jetstream(events).publish(subject, body, { headers });
  };
  const stream = async (fn: string) => {
    const nc = await p.nats.connect('gateway');
    try {
      return await (await jetstreamManager(nc)).streams.info(durableTriggerStream(fn)).catch(() => undefined);
    } finally {
      await nc.close();
    }
  };

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    startSchedulers();
    await p.startGateway();
    startWorker();
    await p.waitForNodes(['node-a']);
    events = await p.nats.connect('events');
    const echo = script('echo "subject=$SKIFF_EVENT_SUBJECT id=$SKIFF_EVENT_ID attempt=$SKIFF_ATTEMPT"\ncat\n');
    const res = await p.deploy('on-payment', echo, SH, { triggers: { subjects: ['payments.new', 'payments.*.refund'], durable: true } });
    expect(res.status, await res.clone().text()).toBe(201);
    expect((await res.json()).triggers).toEqual({ subjects: ['payments.new', 'payments.*.refund'], durable: true });
  }, 180_000);
  afterAll(async () => {
    await events?.close();
    await p?.close();
  });

  it('stores each message at publish (the PubAck comes from its stream) and runs it as an async invocation that sees the event', async () => {
    const ack = await publish('payments.new', '{"amount":5}', { 'Content-Type': 'application/json' });
    expect(ack.stream).toBe(durableTriggerStream('on-payment'));
    await publish('payments.eu.refund', 'refund');
    const done = await invocationsOf('on-payment', succeeded(2), 'both events to run');
    const outputs = done.map(resultText).sort();
    expect(outputs[0]).toMatch(/^subject=payments\.eu\.refund id=on-payment\.[0-9a-f]{32} attempt=1\nrefund$/);
    expect(outputs[1]).toMatch(/^subject=payments\.new id=on-payment\.[0-9a-f]{32} attempt=1\n\{"amount":5\}$/);
    // Queued and taken off the function's stream: nothing waits there any more.
    await waitUntil(async () => (await stream('on-payment'))?.state.messages === 0, 'the stream to be empty');
  });

  it('keeps messages published while no worker runs, and runs every one when a worker comes', async () => {
    await worker.stop();
    await p.waitForNodes([]);
    const before = (await invocationsOf('on-payment', () => true, 'the list')).length;
    for (let i = 0; i < 5; i++) await publish('payments.new', `offline ${i}`);
    startWorker();
    await p.waitForNodes(['node-a']);
    const done = await invocationsOf('on-payment', succeeded(before + 5), 'the five events to run');
    const offline = done.map(resultText).filter((t) => t.includes('offline')).map((t) => t.split('\n')[1]).sort();
    expect(offline).toEqual(['offline 0', 'offline 1', 'offline 2', 'offline 3', 'offline 4']);
  });

  it('keeps messages published while no scheduler runs, and runs each once when schedulers come back', async () => {
    await Promise.all(schedulers.map((s) => s.stop()));
    const before = (await invocationsOf('on-payment', () => true, 'the list')).length;
    for (let i = 0; i < 4; i++) await publish('payments.new', `no scheduler ${i}`);
    expect((await stream('on-payment'))?.state.messages).toBe(4);
    startSchedulers();
    const done = await invocationsOf('on-payment', succeeded(before + 4), 'the four events to run');
    const ran = done.map(resultText).filter((t) => t.includes('no scheduler')).map((t) => t.split('\n')[1]).sort();
    expect(ran).toEqual(['no scheduler 0', 'no scheduler 1', 'no scheduler 2', 'no scheduler 3']);
  });

  it("retries a failing function's events with its async settings and ends them in the dead letters", async () => {
    const dir = script('echo "declined $SKIFF_ATTEMPT" >&2\nexit 1\n');
    expect((await p.deploy('declines', dir, SH, { asyncAttempts: 2, asyncBackoffMs: 50, triggers: { subjects: ['cards.check'], durable: true } })).status).toBe(201);
    await publish('cards.check', 'card');
    const [dead] = await invocationsOf('declines', (all) => all.length === 1 && all[0]!.status === 'dead', 'the event to end dead');
    expect(dead!.attempts.map((a) => a.error?.code)).toEqual(['SKIFF_FN_FAILED', 'SKIFF_FN_FAILED']);
    const letters = (await (await p.api('GET', '/v1/functions/declines/dead-letters')).json()) as { deadLetters: { id: string; attempts: number }[] };
    expect(letters.deadLetters).toMatchObject([{ id: dead!.id, attempts: 2 }]);
  });

  it('refuses subjects that overlap another function\'s durable trigger, naming it (409 SKIFF_TRIGGER_TAKEN)', async () => {
    const res = await p.deploy('greedy', script('cat\n'), SH, { triggers: { subjects: ['payments.*'], durable: true } });
    expect(res.status).toBe(409);
    const problem = (await res.json()) as { code: string; detail: string };
    expect(problem.code).toBe('SKIFF_TRIGGER_TAKEN');
    expect(problem.detail).toContain('"on-payment"');
    // Nothing of it was made: no function, no stream.
    expect((await p.api('GET', '/v1/functions/greedy')).status).toBe(404);
    expect(await stream('greedy')).toBeUndefined();
  });

  it('refuses to stop being durable while events wait (409 SKIFF_EVENTS_PENDING), and removes the stream once they ran', async () => {
    const dir = script('cat\n');
    expect((await p.deploy('ledger', dir, SH, { triggers: { subjects: ['ledger.entry'], durable: true } })).status).toBe(201);
    await worker.stop();
    await p.waitForNodes([]);
    await publish('ledger.entry', 'one');
    // Queued as an async invocation, or still in the stream: wait until it has left the stream.
    await waitUntil(async () => (await stream('ledger'))?.state.messages === 0, 'the event to be queued');
    await Promise.all(schedulers.map((s) => s.stop()));
    await publish('ledger.entry', 'two');
    const refused = await p.api('PUT', '/v1/functions/ledger', { image: 'ledger:latest', triggers: { subjects: ['ledger.entry'] } });
    expect(refused.status).toBe(409);
    expect((await refused.json()).code).toBe('SKIFF_EVENTS_PENDING');
    startSchedulers();
    startWorker();
    await p.waitForNodes(['node-a']);
    await invocationsOf('ledger', succeeded(2), 'both entries to run');
    const res = await p.api('PUT', '/v1/functions/ledger', { image: 'ledger:latest', triggers: { subjects: ['ledger.entry'] } });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await stream('ledger')).toBeUndefined();
  });

  it('removes the stream with the function', async () => {
    expect((await p.deploy('short-lived', script('cat\n'), SH, { triggers: { subjects: ['short.lived'], durable: true } })).status).toBe(201);
    expect(await stream('short-lived')).toBeDefined();
    expect((await p.api('DELETE', '/v1/functions/short-lived')).status).toBe(204);
    expect(await stream('short-lived')).toBeUndefined();
  });
});

describe('durable triggers and the JetStream store', () => {
  let p: Platform;
  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    // Each durable stream sets aside its bytes of nats-server's max_file_store (infra/nats/nats.conf: 4GB).
    await p.startGateway({ SKIFF_DURABLE_TRIGGER_MAX_BYTES: String(8 * 1024 ** 3) });
  }, 120_000);
  afterAll(async () => p?.close());

  it('refuses a durable trigger the store has no room for with 503 SKIFF_QUEUE_FULL, deploying nothing', async () => {
    const res = await p.deploy('too-big', script('cat\n'), SH, { triggers: { subjects: ['big.events'], durable: true } });
    expect(res.status).toBe(503);
    const problem = (await res.json()) as { code: string; detail: string };
    expect(problem.code).toBe('SKIFF_QUEUE_FULL');
    expect(problem.detail).toContain('SKIFF_DURABLE_TRIGGER_MAX_BYTES');
    expect((await p.api('GET', '/v1/functions/too-big')).status).toBe(404);
  });
});
