import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Platform, REPO } from '@skiff/testkit';

const COUNTER = join(REPO, 'test/fixtures/functions/counter');

/** Several workers: warm placement, sharing a burst, draining on SIGTERM. */
describe('placement across workers', () => {
  let p: Platform;

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
  }, 180_000);
  afterAll(async () => p?.close());

  it('sends invocations to the node with a warm instance of the version', async () => {
    expect((await p.deployNode('counter', COUNTER)).status).toBe(201);
    const first = await call('counter');
    p.start('worker', { SKIFF_NODE_ID: 'node-a', SKIFF_WORKER_SLOTS: '2' }, 'worker-node-a');
    await p.waitForNodes(['node-a', 'node-b']);
    await sleep(500); // a heartbeat from node-b reporting its idle warm instance
    for (let i = 0; i < 5; i++) {
      const r = await call('counter');
      expect(r.body.instance).toBe(first.body.instance);
      await sleep(100); // the node reports its load again after each invocation
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

  it('drains a worker on SIGTERM: it finishes what it runs, then leaves the table', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-drain-'));
    writeFileSync(join(dir, 'slow.sh'), 'sleep 1; echo finished\n');
    expect((await p.deploy('slow', dir, ['/bin/sh', '/function/slow.sh'])).status).toBe(201);
    await p.api('POST', '/v1/functions/slow/invoke', ''); // unpack on whichever node
    const worker = p.services.find((s) => s.name === 'worker-node-a')!;
    // Both nodes are idle; node-a wins the tie, so the next invocation lands there.
    const inFlight = p.api('POST', '/v1/functions/slow/invoke', '');
    await sleep(300);
    const stopped = worker.stop();
    const res = await inFlight;
    expect([res.status, await res.text()]).toEqual([200, 'finished\n']);
    await stopped;
    await p.waitForNodes(['node-b']);
  });
});
