import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Platform, REPO } from '@skiff/testkit';

const RUNC = '/usr/sbin/runc';

/** The worker speaks only the OCI runtime command line, so runc can stand in for skiff-launch. */
describe.skipIf(!existsSync(RUNC))('a worker running functions under runc (skipped: runc is not installed)', () => {
  let p: Platform;

  beforeAll(async () => {
    p = await Platform.create();
    // runc mounts the root from inside the user namespace: the mapped uid must be able to reach it.
    chmodSync(p.dataDir, 0o711);
    await p.buildBase();
    p.start('scheduler');
    p.start('worker', { SKIFF_NODE_ID: 'runc-node', SKIFF_RUNTIME: RUNC }, 'worker-runc');
    await p.startGateway();
    await p.waitForNodes(['runc-node']);
  });
  afterAll(async () => p?.close());

  it('deploys echo and gets the body back', async () => {
    expect((await p.deploy('echo', join(REPO, 'functions/echo'), ['/bin/sh', '/function/handler.sh'])).status).toBe(201);
    const res = await p.api('POST', '/v1/functions/echo/invoke', 'hello from runc');
    expect(await res.text()).toBe('hello from runc');
    expect(res.status).toBe(200);
  });

  it('isolates the same way', async () => {
    expect((await p.deploy('inspect', join(REPO, 'test/fixtures/functions/inspect'), ['/bin/sh', '/function/inspect.sh'])).status).toBe(201);
    const text = await (await p.api('POST', '/v1/functions/inspect/invoke', '/etc/hostname\n')).text();
    expect(text).toContain('pid=1\n');
    expect(text).toContain('hostname=inspect\n');
    expect(text).toContain('interfaces=lo');
  });
});
