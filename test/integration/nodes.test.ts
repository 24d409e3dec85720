import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { DEFAULT_SETTINGS, SUBJECTS, decodeJson, heartbeatSchema, newCallId } from '@skiff/contracts';
import { Invoker, Messaging } from '@skiff/gateway';
import { NodeDirectory } from '@skiff/placement';
import { createLogger, natsAuthFrom } from '@skiff/service-kit';
import { Platform, REPO } from '@skiff/testkit';

describe('worker nodes come and go', () => {
  let p: Platform;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    // node-a beats once a minute (two missed take two minutes): when it leaves the table
    // within this test, it is because it said it was leaving.
    p.start('scheduler');
    p.start('worker', { SKIFF_NODE_ID: 'node-a', SKIFF_HEARTBEAT_MS: '60000' }, 'worker-node-a');
    await p.startGateway();
    await p.waitForNodes(['node-a']);
    // A deadline (15 min) past the test's own timeout: an answer at all did not wait for it.
    const res = await p.deploy('echo', join(REPO, 'functions/echo'), ['/bin/sh', '/function/handler.sh'], { timeoutMs: 900_000 });
    expect(res.status).toBe(201);
  });
  afterAll(async () => p?.close());

  it('lists the live worker', async () => {
    const body = await (await p.api('GET', '/v1/nodes')).json();
    expect(body.nodes).toHaveLength(1);
    expect(body.nodes[0]).toMatchObject({ nodeId: 'node-a', slots: 16 });
  });

  it('drops a worker that stops at once, and then answers 503 instead of waiting for the deadline', async () => {
    const worker = p.services.find((s) => s.name === 'worker-node-a')!;
    await worker.stop();
    await p.waitForNodes([]);
    const res = await p.api('POST', '/v1/functions/echo/invoke', 'x');
    expect(res.status).toBe(503);
    expect((await res.json()).code).toBe('SKIFF_NO_WORKER');
  });

  it('drops a worker killed with SIGKILL once its heartbeats stop', async () => {
    const b = p.start('worker', { SKIFF_NODE_ID: 'node-b' }, 'worker-node-b');
    await p.waitForNodes(['node-b']);
    expect(await (await p.api('POST', '/v1/functions/echo/invoke', 'back')).text()).toBe('back');
    await b.kill();
    // A killed worker says nothing: only its missed heartbeats (2 × 200 ms) can drop it.
    await p.waitForNodes([]);
  });

  it('answers 503 SKIFF_NO_SCHEDULER when no scheduler runs', async () => {
    await p.services.find((s) => s.name === 'scheduler')!.stop();
    const res = await p.api('POST', '/v1/functions/echo/invoke', 'x');
    expect(res.status).toBe(503);
    expect((await res.json()).code).toBe('SKIFF_NO_SCHEDULER');
  });
});

describe('a call whose worker vanished before taking it', () => {
  let p: Platform;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    // Slow heartbeats keep a dead node in every table for minutes (3 missed × 60 s), so the
    // gateway still places the next call on it, as it would in the moment after a crash.
    const slow = { SKIFF_HEARTBEAT_MS: '60000' };
    p.start('scheduler');
    await p.startGateway();
    p.start('worker', { SKIFF_NODE_ID: 'node-a', ...slow }, 'worker-node-a');
    await p.waitForNodes(['node-a']);
    const res = await p.deploy('echo', join(REPO, 'functions/echo'), ['/bin/sh', '/function/handler.sh']);
    expect(res.status).toBe(201);
    // node-a now has the image unpacked, so placement prefers it over a fresh node.
    expect(await (await p.api('POST', '/v1/functions/echo/invoke', 'warm')).text()).toBe('warm');
    p.start('worker', { SKIFF_NODE_ID: 'node-b', ...slow }, 'worker-node-b');
    await p.waitForNodes(['node-a', 'node-b']);
  });
  afterAll(async () => p?.close());

  it('is placed once more, on a live node, and answers', async () => {
    await p.services.find((s) => s.name === 'worker-node-a')!.kill();
    const res = await p.api('POST', '/v1/functions/echo/invoke', 'again');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('again');
    const log = readFileSync(join(p.dataDir, 'gateway.log'), 'utf8');
    expect(log).toMatch(/"nodeId":"node-a".*placing it again/);
  });
});

describe('a scheduler and a gateway started after the workers', () => {
  let p: Platform;
  let nc: NatsConnection;

  beforeAll(async () => {
    p = await Platform.create();
    nc = await p.nats.connect('gateway'); // watches heartbeats, as a gateway does
  });
  afterAll(async () => {
    await nc?.close();
    await p?.close();
  });

  it('learn of a worker at once, not at its next heartbeat a minute later', async () => {
    // The worker's first heartbeat goes out before anyone keeps a node table; its next is a
    // minute away. Only a roll call from the newcomers can bring it into their tables now.
    const beats = nc.subscribe(SUBJECTS.heartbeat);
    const first = (async () => {
      for await (const m of beats) if (decodeJson(heartbeatSchema, m.data, 'heartbeat').nodeId === 'node-early') return;
    })();
    p.start('worker', { SKIFF_NODE_ID: 'node-early', SKIFF_HEARTBEAT_MS: '60000', SKIFF_STEM_CELLS: '0', SKIFF_STEM_FUNCTIONS: '0' }, 'worker-node-early');
    await first;
    beats.unsubscribe();
    p.start('scheduler');
    await p.startGateway();
    await p.waitForNodes(['node-early']);
    const body = await (await p.api('GET', '/v1/nodes')).json();
    expect(body.nodes).toMatchObject([{ nodeId: 'node-early' }]);
  });
});

describe('a gateway that has heard of no live node yet', () => {
  let p: Platform;
  let messaging: Messaging;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.startAll('node-a');
    messaging = await Messaging.connect(p.nats.url, natsAuthFrom(p.nats.env('gateway')), createLogger('gateway', 'silent'));
  });
  afterAll(async () => {
    await messaging?.nc.close();
    await p?.close();
  });

  it('asks a scheduler where to send the call, sends it to that node and gets its answer', async () => {
    const res = await p.deploy('echo', join(REPO, 'functions/echo'), ['/bin/sh', '/function/handler.sh']);
    const fn = (await res.json()) as { version: number; imageDigest: string };
    const log = createLogger('gateway', 'silent');
    // A node directory that was never started: this invoker's own table stays empty.
    const invoker = new Invoker(messaging, new NodeDirectory(messaging.nc, { missedHeartbeats: 2, log }), log);
    const inv = { callId: newCallId(), fn: 'echo', fnVersion: fn.version, image: fn.imageDigest, mode: 'exec' as const, settings: DEFAULT_SETTINGS, deadline: Date.now() + 30_000 };
    const result = await invoker.invoke(inv, new TextEncoder().encode('placed by a scheduler'));
    expect(new TextDecoder().decode(result.body)).toBe('placed by a scheduler');
    invoker.close();
  });
});
