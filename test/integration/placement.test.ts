import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { SUBJECTS, type Heartbeat } from '@skiff/contracts';
import { HELD_SCRIPT, Platform, REPO, heldContainer, waitUntil } from '@skiff/testkit';

const COUNTER = join(REPO, 'test/fixtures/functions/counter');
// This run's own name for the held function (the test finds its container by cgroup, host-wide).
const drained = `drained-${randomBytes(3).toString('hex')}`;

/** Several workers: warm placement, sharing a burst, draining on SIGTERM. */
describe('placement across workers', () => {
  let p: Platform;
  let nc: NatsConnection;

  /**
   * Waits for `n` heartbeats from now on that `check` accepts. The gateway hears every
   * heartbeat too; once the test has seen a second one, the gateway has had the first.
   */
  const heartbeats = async (n: number, check: (hb: Heartbeat) => boolean, what: string) => {
    let seen = 0;
    const sub = nc.subscribe(SUBJECTS.heartbeat, { callback: (_err, m) => void (check(m.json<Heartbeat>()) && seen++) });
    try {
      await waitUntil(async () => seen >= n, what);
    } finally {
      sub.unsubscribe();
    }
  };
  const warmOnB = (hb: Heartbeat) => hb.nodeId === 'node-b' && hb.inflight === 0 && hb.warm.some((w) => w.fn === 'counter' && w.idle >= 1);

  const call = async (fn: string, input: object = {}) => {
    const res = await p.api('POST', `/v1/functions/${fn}/invoke`, JSON.stringify(input), { 'content-type': 'application/json' });
    return { status: res.status, body: await res.json() };
  };

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.buildNodeRuntime();
    p.start('scheduler');
    // node-b first: node-a would win every tie, so only warm placement keeps work on node-b.
    p.start('worker', { SKIFF_NODE_ID: 'node-b', SKIFF_WORKER_SLOTS: '2' }, 'worker-node-b');
    await p.startGateway();
    await p.waitForNodes(['node-b']);
    nc = await p.nats.connect('gateway'); // watches heartbeats, as a gateway does
  }, 180_000);
  afterAll(async () => {
    await nc?.close();
    await p?.close();
  });

  it('sends invocations to the node with a warm instance of the version', async () => {
    expect((await p.deployNode('counter', COUNTER)).status).toBe(201);
    const first = await call('counter');
    p.start('worker', { SKIFF_NODE_ID: 'node-a', SKIFF_WORKER_SLOTS: '2' }, 'worker-node-a');
    await p.waitForNodes(['node-a', 'node-b']);
    await heartbeats(2, warmOnB, 'node-b to report its idle warm instance');
    for (let i = 0; i < 5; i++) {
      const r = await call('counter');
      expect(r.body.instance).toBe(first.body.instance);
      // the node reports its load again after each invocation
      await heartbeats(2, warmOnB, 'node-b to report the instance idle again');
    }
  });

  it('spreads a burst over both nodes once one is full', async () => {
    // Two slots a node: a node with two invocations in flight has no room, whatever it has cached.
    const dir = mkdtempSync(join(tmpdir(), 'skiff-spread-'));
    cpSync(COUNTER, dir, { recursive: true });
    writeFileSync(join(dir, 'marker.txt'), 'a distinct image\n');
    expect((await p.deployNode('spread', dir, { concurrency: 1, maxInstances: 2 })).status).toBe(201);
    const results = await Promise.all(Array.from({ length: 6 }, () => call('spread', { sleepMs: 300 })));
    expect(results.every((r) => r.status === 200)).toBe(true);
    // Each node runs at most two instances of it: more than two distinct instances means both took work.
    expect(new Set(results.map((r) => r.body.instance)).size).toBeGreaterThan(2);
  });

  it('drains a worker on SIGTERM: it leaves the table at once and finishes what it runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-drain-'));
    writeFileSync(join(dir, 'held.sh'), HELD_SCRIPT);
    expect((await p.deploy(drained, dir, ['/bin/sh', '/function/held.sh'], { timeoutMs: 30_000 })).status).toBe(201);
    await p.api('POST', `/v1/functions/${drained}/invoke`, ''); // unpack on whichever node
    const inFlight = p.api('POST', `/v1/functions/${drained}/invoke`, 'hold');
    const release = await heldContainer(drained);
    // the node running it, as its heartbeats report it; the other one stays
    let busy: { nodeId: string; inflight: number }[] = [];
    await waitUntil(async () => {
      const { nodes } = (await (await p.api('GET', '/v1/nodes')).json()) as { nodes: { nodeId: string; inflight: number }[] };
      busy = nodes.filter((n) => n.inflight > 0);
      return nodes.length === 2 && busy.length === 1;
    }, 'one node to report the held call');
    const [running, other] = busy[0]!.nodeId === 'node-a' ? ['node-a', 'node-b'] : ['node-b', 'node-a'];
    const stopped = p.services.find((s) => s.name === `worker-${running}`)!.stop();
    await p.waitForNodes([other]);
    let answered = false;
    void inFlight.then(() => (answered = true));
    // Held for five of its heartbeat periods after it left: its draining heartbeats keep its
    // call from being failed as lost.
    await new Promise((r) => setTimeout(r, 1000));
    expect(answered, 'answered before it was let go').toBe(false);
    release();
    const res = await inFlight;
    expect([res.status, await res.text()]).toEqual([200, 'done\n']);
    await stopped;
  });
});
