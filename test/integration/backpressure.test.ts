import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HELD_SCRIPT, Platform, heldContainer, waitUntil } from '@skiff/testkit';

// This run's own names: the test finds the containers by their cgroups, /skiff/<fn>/… host-wide.
const run = randomBytes(3).toString('hex');
const held = `held-${run}`;
const impatient = `impatient-${run}`;

describe('a full node queues a little, then refuses with Retry-After', () => {
  let p: Platform;
  const invoke = (fn: string, body: string) => p.api('POST', `/v1/functions/${fn}/invoke`, body);
  /** Invocations the node has taken, running or waiting, as its heartbeats report them. */
  const nodeInflight = async () => ((await (await p.api('GET', '/v1/nodes')).json()) as { nodes: { nodeId: string; inflight: number }[] }).nodes.find((n) => n.nodeId === 'tiny')?.inflight;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    // One slot and room for one waiter.
    p.start('scheduler');
    p.start('worker', { SKIFF_NODE_ID: 'tiny', SKIFF_WORKER_SLOTS: '1', SKIFF_WORKER_QUEUE: '1' }, 'worker-tiny');
    await p.startGateway();
    await p.waitForNodes(['tiny']);
    const dir = mkdtempSync(join(tmpdir(), 'skiff-held-'));
    writeFileSync(join(dir, 'held.sh'), HELD_SCRIPT);
    expect((await p.deploy(held, dir, ['/bin/sh', '/function/held.sh'], { timeoutMs: 30_000 })).status).toBe(201);
    expect((await p.deploy(impatient, dir, ['/bin/sh', '/function/held.sh'], { timeoutMs: 300 })).status).toBe(201);
    // the image unpacked before the tests
    expect((await invoke(held, '')).status).toBe(200);
  });
  afterAll(async () => p?.close());

  it('runs one, queues one and refuses the third with 429', async () => {
    const first = invoke(held, 'hold');
    const release = await heldContainer(held);
    const second = invoke(held, '');
    let secondAnswered = false;
    void second.then(() => (secondAnswered = true));
    await waitUntil(async () => (await nodeInflight()) === 2, 'the node to have taken the second (queued behind the first)');
    const third = await invoke(held, '');
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('1');
    expect((await third.json()).code).toBe('SKIFF_OVERLOADED');
    // The queued one runs once the first is done, not before.
    expect(secondAnswered).toBe(false);
    release();
    const done = await first;
    expect([done.status, await done.text()]).toEqual([200, 'done\n']);
    const queued = await second;
    expect([queued.status, await queued.text()]).toEqual([200, 'done\n']);
  });

  it('gives up on a queued invocation at its deadline with 503 and Retry-After', async () => {
    const busy = invoke(held, 'hold');
    const release = await heldContainer(held);
    const res = await invoke(impatient, '');
    expect([res.status, res.headers.get('retry-after')]).toEqual([503, '1']);
    expect((await res.json()).code).toBe('SKIFF_NO_CAPACITY');
    release();
    expect((await busy).status).toBe(200);
  });
});
