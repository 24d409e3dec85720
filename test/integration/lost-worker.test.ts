import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Platform, REPO, functionProcesses, killFunctionProcesses, waitUntil } from '@skiff/testkit';

/**
 * docs/security.md #29: a call whose worker is lost, or whose NATS connection is, answers with a
 * retryable 503 at once. Every call here has a deadline of 15 minutes, far past the test's own
 * timeout, so an answer at all shows it did not wait for its deadline.
 */
const FIFTEEN_MINUTES = 900_000;
const ECHO = join(REPO, 'functions/echo');

/** A function that sleeps for ten minutes: a call to it is in flight until something ends it. */
function deploySleeper(p: Platform, name: string): Promise<Response> {
  return p.deploy(name, ECHO, ['/bin/sh', '-c', 'sleep 600'], { timeoutMs: FIFTEEN_MINUTES });
}

/** Starts a call to `fn` and waits until its container runs: the worker has taken it. */
async function callInFlight(p: Platform, fn: string): Promise<{ answer: Promise<Response> }> {
  const answer = p.api('POST', `/v1/functions/${fn}/invoke`, 'x');
  await waitUntil(async () => functionProcesses(fn).length > 0, `a container of ${fn}`, 30_000);
  return { answer }; // wrapped: an async function returning the promise itself would wait for it
}

async function expectRetryable503(res: Response, code: string): Promise<void> {
  expect(res.status).toBe(503);
  expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
  expect((await res.json()).code).toBe(code);
}

describe('a worker killed with SIGKILL while a call runs on it', () => {
  let p: Platform;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    p.start('scheduler');
    await p.startGateway();
    for (const id of ['node-a', 'node-b']) p.start('worker', { SKIFF_NODE_ID: id }, `worker-${id}`);
    await p.waitForNodes(['node-a', 'node-b']);
    expect((await deploySleeper(p, 'sleeper')).status).toBe(201);
    expect((await p.deploy('echo', ECHO, ['/bin/sh', '/function/handler.sh'], { timeoutMs: FIFTEEN_MINUTES })).status).toBe(201);
  });
  afterAll(async () => {
    killFunctionProcesses('sleeper');
    await p?.close();
  });

  /** The node whose heartbeats report a call running: the one the sleeper's call went to. */
  async function busyNode(): Promise<string> {
    let busy: string | undefined;
    await waitUntil(async () => {
      const body = (await (await p.api('GET', '/v1/nodes')).json()) as { nodes: { nodeId: string; inflight: number }[] };
      busy = body.nodes.find((n) => n.inflight > 0)?.nodeId;
      return busy !== undefined;
    }, 'a node running the call');
    return busy!;
  }

  it('fails that call with 503 SKIFF_WORKER_LOST and Retry-After once the node misses its heartbeats', async () => {
    const { answer: inFlight } = await callInFlight(p, 'sleeper');
    const node = await busyNode();
    await p.services.find((s) => s.name === `worker-${node}`)!.kill();
    // Nothing else is sent: only the node's silence can tell the gateway.
    await expectRetryable503(await inFlight, 'SKIFF_WORKER_LOST');
    killFunctionProcesses('sleeper');
  });

  it('places the calls sent right after a kill on a live node, or answers them 503 at once', async () => {
    p.start('worker', { SKIFF_NODE_ID: 'node-c' }, 'worker-node-c');
    await waitUntil(async () => {
      const body = (await (await p.api('GET', '/v1/nodes')).json()) as { nodes: unknown[] };
      return body.nodes.length === 2;
    }, 'two live nodes');
    const { answer: inFlight } = await callInFlight(p, 'sleeper');
    const node = await busyNode();
    await p.services.find((s) => s.name === `worker-${node}`)!.kill();
    // Sent before any table has dropped the node: nothing listens on its subject any more.
    const after = await Promise.all(['1', '2', '3', '4', '5', '6'].map((b) => p.api('POST', '/v1/functions/echo/invoke', b)));

    await expectRetryable503(await inFlight, 'SKIFF_WORKER_LOST');
    for (const [i, res] of after.entries()) {
      if (res.status === 200) expect(await res.text()).toBe(String(i + 1));
      else await expectRetryable503(res, 'SKIFF_WORKER_LOST');
    }
    expect(after.filter((r) => r.status === 200).length).toBeGreaterThan(0);
  });
});

describe('a worker killed with SIGKILL after it said it is leaving', () => {
  let p: Platform;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    p.start('scheduler');
    await p.startGateway();
    p.start('worker', { SKIFF_NODE_ID: 'node-a' }, 'worker-node-a');
    await p.waitForNodes(['node-a']);
    expect((await deploySleeper(p, 'lingerer')).status).toBe(201);
  });
  afterAll(async () => {
    killFunctionProcesses('lingerer');
    await p?.close();
  });

  it('fails the call it was finishing with 503 SKIFF_WORKER_LOST once its draining heartbeats stop', async () => {
    const { answer: inFlight } = await callInFlight(p, 'lingerer');
    const worker = p.services.find((s) => s.name === 'worker-node-a')!;
    worker.child.kill('SIGTERM'); // it leaves the table and waits for its call, ten minutes
    await p.waitForNodes([]);
    await worker.kill();
    await expectRetryable503(await inFlight, 'SKIFF_WORKER_LOST');
  });
});

describe('a call the scheduler places on a worker that is gone', () => {
  let p: Platform;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    // A minute between heartbeats keeps the dead node in the scheduler's table for two.
    p.start('scheduler');
    await p.startGateway();
    p.start('worker', { SKIFF_NODE_ID: 'node-a', SKIFF_HEARTBEAT_MS: '60000' }, 'worker-node-a');
    await p.waitForNodes(['node-a']);
    expect((await p.deploy('echo', ECHO, ['/bin/sh', '/function/handler.sh'], { timeoutMs: FIFTEEN_MINUTES })).status).toBe(201);
  });
  afterAll(async () => p?.close());

  it('answers 503 SKIFF_NO_WORKER with Retry-After instead of waiting for the deadline', async () => {
    await p.services.find((s) => s.name === 'worker-node-a')!.kill();
    // The gateway finds nothing listening on node-a's subject, drops it and, with no node left
    // in its table, asks the scheduler, which still lists node-a; nothing listens there either,
    // so the call never started.
    await expectRetryable503(await p.api('POST', '/v1/functions/echo/invoke', 'x'), 'SKIFF_NO_WORKER');
    expect(readFileSync(join(p.dataDir, 'gateway.log'), 'utf8')).toContain('worker gone before the call started');
  });
});

describe('a NATS server that stops while a call is in flight', () => {
  let p: Platform;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    p.start('scheduler');
    p.start('worker', { SKIFF_NODE_ID: 'node-a' }, 'worker-node-a');
    await p.startGateway();
    await p.waitForNodes(['node-a']);
    expect((await deploySleeper(p, 'napper')).status).toBe(201);
  });
  afterAll(async () => {
    killFunctionProcesses('napper');
    await p?.close();
  });

  it('fails the call with 503 SKIFF_NATS_UNAVAILABLE and Retry-After, not at its deadline', async () => {
    const { answer: inFlight } = await callInFlight(p, 'napper');
    await p.nats.stop();
    await expectRetryable503(await inFlight, 'SKIFF_NATS_UNAVAILABLE');
  });
});
