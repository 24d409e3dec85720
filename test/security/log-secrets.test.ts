import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Platform, REPO, waitUntil } from '@skiff/testkit';

/**
 * No credential reaches a log: the admin token and every NATS password, searched for in every
 * service's log (at debug level) after the calls that carry them, refused ones included.
 */
describe('service logs hold no credential', () => {
  let p: Platform;
  const debug = { SKIFF_LOG_LEVEL: 'debug' };

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    p.start('scheduler', debug);
    p.start('worker', { ...debug, SKIFF_NODE_ID: 'node-a' }, 'worker-node-a');
    await p.startGateway(debug);
    await p.waitForNodes(['node-a']);
  }, 180_000);
  afterAll(async () => p?.close());

  it('after deploys, sync and async invokes, a failing function and refused tokens', async () => {
    const sh = ['/bin/sh', '/function/handler.sh'];
    expect((await p.deploy('echo', join(REPO, 'functions/echo'), sh)).status).toBe(201);
    expect((await p.api('POST', '/v1/functions/echo/invoke', 'hi')).status).toBe(200);
    const accepted = await p.api('POST', '/v1/functions/echo/invoke', 'later', { prefer: 'respond-async' });
    expect(accepted.status).toBe(202);
    const { id } = (await accepted.json()) as { id: string };
    await waitUntil(async () => ((await (await p.api('GET', `/v1/invocations/${id}`)).json()) as { status: string }).status === 'succeeded', 'the async invocation', 30_000);
    const broken = mkdtempSync(join(tmpdir(), 'skiff-broken-'));
    writeFileSync(join(broken, 'handler.sh'), 'echo "failing on purpose" >&2\nexit 3\n');
    expect((await p.deploy('broken', broken, sh)).status).toBe(201);
    expect((await p.api('POST', '/v1/functions/broken/invoke', 'x')).status).toBe(502);
    // Near misses of the admin token, and the token where it does not belong.
    const url = `${p.gatewayUrl}/v1/functions`;
    for (const authorization of [`Bearer ${p.token}x`, `Basic ${Buffer.from(`admin:${p.token}`).toString('base64')}`, p.token]) {
      expect((await fetch(url, { headers: { authorization } })).status).toBe(401);
    }
    expect((await fetch(`${url}?token=${p.token}`)).status).toBe(401);
    expect((await fetch(`${p.gatewayUrl}/v2/`, { headers: { authorization: `Bearer ${p.token}0` } })).status).toBe(401);
    await Promise.all(p.services.map((s) => s.stop())); // every line written

    const secrets = [p.token, ...Object.values(p.nats.credentials).map((c) => c.password)];
    const logs = readdirSync(p.dataDir).filter((f) => f.endsWith('.log'));
    expect(logs.sort()).toEqual(['gateway.log', 'scheduler.log', 'worker-node-a.log']);
    for (const log of logs) {
      const text = readFileSync(join(p.dataDir, log), 'utf8');
      expect(text.length, log).toBeGreaterThan(0);
      for (const secret of secrets) expect(text.includes(secret), `${log} holds a credential`).toBe(false);
    }
  });
});
