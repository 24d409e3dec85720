import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Platform } from '@skiff/testkit';

describe('a full node queues a little, then refuses with Retry-After', () => {
  let p: Platform;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    // One slot and room for one waiter.
    p.start('scheduler');
    p.start('worker', { SKIFF_NODE_ID: 'tiny', SKIFF_WORKER_SLOTS: '1', SKIFF_WORKER_QUEUE: '1' }, 'worker-tiny');
    await p.startGateway();
    await p.waitForNodes(['tiny']);
    const dir = mkdtempSync(join(tmpdir(), 'skiff-slow-'));
    writeFileSync(join(dir, 'slow.sh'), 'sleep 1; echo done\n');
    expect((await p.deploy('slow', dir, ['/bin/sh', '/function/slow.sh'], { timeoutMs: 10_000 })).status).toBe(201);
    expect((await p.deploy('impatient', dir, ['/bin/sh', '/function/slow.sh'], { timeoutMs: 300 })).status).toBe(201);
    // Unpack the image before the timing-sensitive part.
    expect((await p.api('POST', '/v1/functions/slow/invoke', '')).status).toBe(200);
  });
  afterAll(async () => p?.close());

  it('runs one, queues one and refuses the third with 429', async () => {
    const first = p.api('POST', '/v1/functions/slow/invoke', '');
    await new Promise((r) => setTimeout(r, 150));
    const second = p.api('POST', '/v1/functions/slow/invoke', '');
    await new Promise((r) => setTimeout(r, 150));
    const third = await p.api('POST', '/v1/functions/slow/invoke', '');
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('1');
    expect((await third.json()).code).toBe('SKIFF_OVERLOADED');
    // The queued one runs once the first is done.
    expect((await first).status).toBe(200);
    const queued = await second;
    expect(queued.status).toBe(200);
    expect(await queued.text()).toBe('done\n');
  });

  it('gives up on a queued invocation at its deadline with 503 and Retry-After', async () => {
    const busy = p.api('POST', '/v1/functions/slow/invoke', '');
    await new Promise((r) => setTimeout(r, 150));
    const res = await p.api('POST', '/v1/functions/impatient/invoke', '');
    expect([res.status, res.headers.get('retry-after')]).toEqual([503, '1']);
    expect((await res.json()).code).toBe('SKIFF_NO_CAPACITY');
    expect((await busy).status).toBe(200);
  });
});
