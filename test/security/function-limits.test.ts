import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Platform, REPO } from '@skiff/testkit';

/**
 * SECURITY.md 16 and 17, end to end through the worker: a limit stops the function that hits
 * it, the caller gets a clear error, and everything else keeps working; container root is an
 * unprivileged host uid that no other function shares.
 */
describe('limits stop only the function that hits them', () => {
  let p: Platform;
  const dir = mkdtempSync(join(tmpdir(), 'skiff-limits-fn-'));

  const deployScript = async (name: string, script: string, settings: Record<string, unknown>) => {
    writeFileSync(join(dir, `${name}.sh`), script);
    const res = await p.deploy(name, dir, ['/bin/sh', `/function/${name}.sh`], settings);
    expect(res.status, await res.clone().text()).toBe(201);
  };
  const invoke = (name: string, body = '') => p.api('POST', `/v1/functions/${name}/invoke`, body);
  const echoStillWorks = async () => {
    const res = await invoke('echo', 'still here');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('still here');
  };

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.startAll();
    expect((await p.deploy('echo', join(REPO, 'functions/echo'), ['/bin/sh', '/function/handler.sh'])).status).toBe(201);
  });
  afterAll(async () => p?.close());

  it('kills a memory balloon at the memory limit and says so', async () => {
    // awk doubles a string until the 32 MiB limit stops it.
    await deployScript('balloon', `awk 'BEGIN { s = "x"; while (1) s = s s }'\n`, { memoryMb: 32 });
    const res = await invoke('balloon');
    expect(res.status).toBe(502);
    const problem = await res.json();
    expect(problem.code).toBe('SKIFF_OUT_OF_MEMORY');
    expect(problem.detail).toContain('32 MiB');
    await echoStillWorks();
  });

  it('counts /tmp against memory: filling it cannot take the node down', async () => {
    await deployScript('diskfill', 'dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1; echo "dd status $?"\n', { memoryMb: 128, tmpMb: 8 });
    const res = await invoke('diskfill');
    // /tmp is 8 MiB: dd fails with ENOSPC inside, the function goes on and reports it.
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/No space left on device/);
    expect(text).toMatch(/dd status [1-9]/);
    await echoStillWorks();
  });

  it('stops a fork bomb at the process limit with a clear error', async () => {
    await deployScript('forkbomb', 'i=0\nwhile [ $i -lt 200 ]; do sleep 30 & i=$((i + 1)); done\nwait\n', { maxProcesses: 16, timeoutMs: 20_000 });
    const res = await invoke('forkbomb');
    expect(res.status).toBe(502);
    expect((await res.json()).code).toBe('SKIFF_TOO_MANY_PROCESSES');
    await echoStillWorks();
  });

  it('ends an endless loop at the deadline with 504, and the worker goes on', async () => {
    await deployScript('spin', 'while :; do :; done\n', { timeoutMs: 800, cpus: 0.2 });
    const res = await invoke('spin');
    expect(res.status).toBe(504);
    expect((await res.json()).code).toBe('SKIFF_DEADLINE_EXCEEDED');
    await echoStillWorks();
  });

  it('maps container root to an unprivileged host uid, different for each function', async () => {
    const script = 'echo "$(id -u) $(cat /proc/self/uid_map)"\n';
    await deployScript('whoami-a', script, {});
    await deployScript('whoami-b', script, {});
    const seen = [];
    for (const fn of ['whoami-a', 'whoami-b']) {
      const res = await invoke(fn);
      expect(res.status).toBe(200);
      const [uid, inside, host, size] = (await res.text()).trim().split(/\s+/).map(Number);
      expect([uid, inside, size]).toEqual([0, 0, 65_536]);
      expect(host).toBeGreaterThanOrEqual(65_536);
      seen.push(host);
    }
    expect(seen[0]).not.toBe(seen[1]);
  });
});
