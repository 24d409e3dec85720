import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Platform, REPO, cgroupDirs, existingCgroupDirs, functionProcesses, waitUntil } from '@skiff/testkit';

// Names of this run's own (cgroups are /skiff/<fn>/<instance> on the whole host).
const run = randomBytes(3).toString('hex');
const fnCgroup = (fn: string) => `/skiff/${fn}`;

/** The instance cgroups below the function's, in every hierarchy. */
const instanceCgroups = (fn: string) =>
  existingCgroupDirs(fnCgroup(fn)).flatMap((d) => readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(d, e.name)));

/**
 * docs/security.md #16 and #17, end to end through the worker: a limit stops the function that hits
 * it, the caller gets a clear error, and everything else keeps working; container root is an
 * unprivileged host uid that no other function shares.
 */
describe('limits stop only the function that hits them', () => {
  let p: Platform;
  const dir = mkdtempSync(join(tmpdir(), 'skiff-limits-fn-'));

  const deployScript = async (name: string, script: string, settings: Record<string, unknown>) => {
    writeFileSync(join(dir, `${name}.sh`), script);
    deployed.push(name);
    const res = await p.deploy(name, dir, ['/bin/sh', `/function/${name}.sh`], settings);
    expect(res.status, await res.clone().text()).toBe(201);
  };
  const invoke = (name: string, body = '') => p.api('POST', `/v1/functions/${name}/invoke`, body);
  const deployed: string[] = [];
  /**
   * Nothing of the stopped container is left: no process in its cgroups, and its own cgroup
   * removed. The function's cgroup above it stays for the next container, so it shows the
   * layout's paths were the right ones to look at.
   */
  const containerGone = async (fn: string) => {
    expect(existingCgroupDirs(fnCgroup(fn))).toEqual(cgroupDirs(fnCgroup(fn)));
    // the launcher removes the container's cgroup just after it has answered
    await waitUntil(async () => functionProcesses(fn).length === 0 && instanceCgroups(fn).length === 0, `${fn}'s container to be gone`).catch(() => {});
    expect(functionProcesses(fn), 'processes left').toEqual([]);
    expect(instanceCgroups(fn), 'container cgroups left').toEqual([]);
  };
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
  afterAll(async () => {
    await p?.close();
    // as a worker does when it starts: the empty function cgroups go (one in use elsewhere stays)
    for (const d of deployed.flatMap((fn) => existingCgroupDirs(fnCgroup(fn)))) {
      try {
        rmdirSync(d);
      } catch {}
    }
  });

  it('kills a memory balloon at the memory limit and says so', async () => {
    // awk doubles a string until the 32 MiB limit stops it.
    const fn = `balloon-${run}`;
    await deployScript(fn, `awk 'BEGIN { s = "x"; while (1) s = s s }'\n`, { memoryMb: 32 });
    const res = await invoke(fn);
    expect(res.status).toBe(502);
    const problem = await res.json();
    expect(problem.code).toBe('SKIFF_OUT_OF_MEMORY');
    expect(problem.detail).toContain('32 MiB');
    await containerGone(fn);
    await echoStillWorks();
  });

  it('caps /tmp at tmpMb: filling it ends in "no space" inside, the node unharmed', async () => {
    await deployScript('diskfill', 'dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1; echo "dd status $?"\n', { memoryMb: 128, tmpMb: 8 });
    const res = await invoke('diskfill');
    // /tmp is 8 MiB: dd fails with ENOSPC inside, the function goes on and reports it.
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/No space left on device/);
    expect(text).toMatch(/dd status [1-9]/);
    await echoStillWorks();
  });

  it('counts /tmp against memory: a /tmp larger than the memory limit fills only up to it', async () => {
    // 48 MiB fit in the 64 MiB /tmp but not in 32 MiB of memory: /tmp is memory, and the
    // memory limit stops the writer as it would a balloon.
    const fn = `tmpfill-${run}`;
    await deployScript(fn, 'dd if=/dev/zero of=/tmp/fill bs=1M count=48\n', { memoryMb: 32, tmpMb: 64 });
    const res = await invoke(fn);
    expect(res.status).toBe(502);
    const problem = await res.json();
    expect(problem.code).toBe('SKIFF_OUT_OF_MEMORY');
    expect(problem.detail).toContain('32 MiB');
    await containerGone(fn);
    await echoStillWorks();
  });

  it('stops a fork bomb at the process limit with a clear error', async () => {
    const fn = `forkbomb-${run}`;
    await deployScript(fn, 'i=0\nwhile [ $i -lt 200 ]; do sleep 30 & i=$((i + 1)); done\nwait\n', { maxProcesses: 16, timeoutMs: 20_000 });
    const res = await invoke(fn);
    expect(res.status).toBe(502);
    expect((await res.json()).code).toBe('SKIFF_TOO_MANY_PROCESSES');
    await containerGone(fn); // its sleeps too
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
