import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HELD_SCRIPT, Platform, cgroupDirs, functionProcesses, heldContainer, processAlive as alive, waitUntil, type Service } from '@skiff/testkit';

const isRoot = process.getuid?.() === 0;

/** Mount ids (mountinfo's first field) of the mounts at or below `dir`: a mount made again gets a new one. */
function mountIds(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f[4] === dir || f[4]?.startsWith(`${dir}/`))
    .map((f) => f[0]!);
}

describe.skipIf(!isRoot)('a worker killed with SIGKILL: what the next worker of the node removes (skipped: containers need root)', () => {
  let p: Platform;
  let worker: Service;
  const fn = `held-${randomBytes(4).toString('hex')}`;
  const fnDir = mkdtempSync(join(tmpdir(), 'skiff-held-'));
  // A container of another node on the same host, in a cgroup under the same function.
  const otherId = randomBytes(8).toString('hex');
  const otherCgroup = `/skiff/${fn}/${otherId}`;
  let other: ChildProcess;
  let workDir = '';

  beforeAll(async () => {
    writeFileSync(join(fnDir, 'handler.sh'), HELD_SCRIPT);
    p = await Platform.create();
    workDir = join(p.dataDir, 'nodes', 'node-a');
    await p.buildBase();
    p.start('scheduler');
    worker = p.start('worker', { SKIFF_NODE_ID: 'node-a' }, 'worker-node-a');
    await p.startGateway();
    await p.waitForNodes(['node-a']);
    expect((await p.deploy(fn, fnDir, ['/bin/sh', '/function/handler.sh'], { timeoutMs: 600_000 })).status).toBe(201);

    // node-b's container: its bundle in node-b's work dir names its cgroup, a process runs in it.
    const otherBundle = join(p.dataDir, 'nodes', 'node-b', 'bundles', otherId);
    mkdirSync(otherBundle, { recursive: true });
    writeFileSync(join(otherBundle, 'config.json'), JSON.stringify({ linux: { cgroupsPath: otherCgroup } }));
    other = spawn('sleep', ['3600'], { stdio: 'ignore' });
    for (const d of cgroupDirs(otherCgroup)) {
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'cgroup.procs'), String(other.pid));
    }
  });

  afterAll(async () => {
    other?.kill('SIGKILL');
    // A run that failed may have left the held container running: its runtime removes its cgroup.
    for (const pid of functionProcesses(fn)) process.kill(Number(pid), 'SIGKILL');
    await p?.close();
    // The killed sleep leaves its cgroup; then the function's own cgroup is empty.
    for (const d of [...cgroupDirs(otherCgroup), ...cgroupDirs(`/skiff/${fn}`)]) {
      for (let i = 0; i < 50 && existsSync(d); i++) {
        try {
          rmdirSync(d);
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
    rmSync(fnDir, { recursive: true, force: true });
  });

  it('kills the containers it left running, removes their cgroups, bundles and image mounts; another node\'s stay', async () => {
    // Its answer is lost with the worker (and may take the whole timeout): not awaited.
    void p.api('POST', `/v1/functions/${fn}/invoke`, 'hold').catch(() => undefined);
    await heldContainer(fn);
    const bundles = readdirSync(join(workDir, 'bundles'));
    const cgroups = bundles.flatMap((id) => cgroupDirs(`/skiff/${fn}/${id}`)).filter((d) => existsSync(d));
    expect(cgroups.length).toBeGreaterThan(0);
    const mounts = mountIds(workDir);
    expect(mounts.length).toBeGreaterThan(0);

    await worker.kill();
    // The container outlives its worker: it holds until someone ends it.
    const left = functionProcesses(fn).filter((pid) => Number(pid) !== other.pid);
    expect(left.length).toBeGreaterThan(0);

    p.start('worker', { SKIFF_NODE_ID: 'node-a' }, 'worker-node-a-again');
    // The new worker says it runs once it has started (after its clean-up, before any work).
    const log = join(p.dataDir, 'worker-node-a-again.log');
    await waitUntil(async () => existsSync(log) && readFileSync(log, 'utf8').includes('"worker running"'), 'the new worker', 30_000);

    for (const pid of left) expect(alive(Number(pid)), `container process ${pid} still runs`).toBe(false);
    for (const d of cgroups) expect(existsSync(d), `${d} is still there`).toBe(false);
    for (const id of bundles) expect(existsSync(join(workDir, 'bundles', id)), `bundle ${id} is still there`).toBe(false);
    const stillMounted = new Set(mountIds(workDir));
    expect(mounts.filter((m) => stillMounted.has(m))).toEqual([]);

    // node-b's container, its cgroup and its bundle are as they were.
    expect(alive(other.pid!)).toBe(true);
    for (const d of cgroupDirs(otherCgroup)) expect(readFileSync(join(d, 'cgroup.procs'), 'utf8').trim()).toBe(String(other.pid));
    expect(existsSync(join(p.dataDir, 'nodes', 'node-b', 'bundles', otherId, 'config.json'))).toBe(true);

    // And the node works: the function runs again.
    const res = await p.api('POST', `/v1/functions/${fn}/invoke`, 'go');
    expect(await res.text()).toBe('done\n');
  });
});
