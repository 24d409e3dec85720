import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Platform, waitUntil } from '@skiff/testkit';

/**
 * /healthz with a real nats-server and real schedulers and workers: what the gateway reports is
 * what answered its health requests over NATS, and it changes as services come and go.
 */

interface Health {
  status: 'ok' | 'degraded';
  nats: string;
  jetstream: string;
  schedulers: number;
  workers: number;
  problems: { role: string; id: string; problem: string }[];
  checkedAt?: string;
}

describe('GET /healthz: the gateway and the platform behind it', () => {
  let p: Platform;
  const health = async () => {
    const res = await fetch(`${p.gatewayUrl}/healthz`);
    return { code: res.status, body: (await res.json()) as Health };
  };
  /** Waits for a round checked after `since` that satisfies `ok`, and returns it. */
  const healthWhen = async (ok: (h: Health) => boolean, what: string, since = Date.now()) => {
    let last: Health | undefined;
    await waitUntil(async () => ((last = (await health()).body), last.checkedAt !== undefined && Date.parse(last.checkedAt) > since && ok(last)), what, 30_000);
    return last!;
  };

  beforeAll(async () => {
    p = await Platform.create();
    await p.startGateway();
  });
  afterAll(async () => p?.close());

  it('is degraded, and says so, while no scheduler or worker answers', async () => {
    const h = await healthWhen(() => true, 'a health round');
    expect(await health()).toMatchObject({ code: 200 });
    expect(h).toMatchObject({ status: 'degraded', nats: 'connected', jetstream: 'ok', schedulers: 0, workers: 0, problems: [] });
  });

  it('is ok once a scheduler and a worker answer, and counts each that does', async () => {
    p.start('scheduler', {}, 'scheduler-a');
    const worker = p.start('worker', { SKIFF_NODE_ID: 'node-a' }, 'worker-node-a');
    const whole = await healthWhen((h) => h.status === 'ok', 'status ok');
    expect(whole).toMatchObject({ nats: 'connected', jetstream: 'ok', schedulers: 1, workers: 1, problems: [] });

    p.start('scheduler', {}, 'scheduler-b');
    p.start('worker', { SKIFF_NODE_ID: 'node-b' }, 'worker-node-b');
    await healthWhen((h) => h.schedulers === 2 && h.workers === 2, 'two schedulers and two workers');

    // A worker that left no longer answers.
    await worker.stop();
    const after = await healthWhen((h) => h.workers === 1, 'one worker', Date.now());
    expect(after).toMatchObject({ status: 'ok', schedulers: 2 });
  });

  it('answers 503 with nats disconnected while NATS is down', async () => {
    await p.nats.stop();
    await waitUntil(async () => (await health()).code === 503, '503 from /healthz', 30_000);
    expect((await health()).body).toMatchObject({ status: 'degraded', nats: 'disconnected', jetstream: 'unknown' });
  });
});
