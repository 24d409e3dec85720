/**
 * Stem cells (docs/decisions.md, "Node cold starts: stem cells"): node runtime containers the
 * worker starts before their function is known. The whole platform, real containers and NATS:
 * a function deployed after the stem cells booted is served by one, and what it sees from
 * inside is what a container made for it would show (the same checks run against one, on a
 * worker that keeps none); its uid range becomes its own and no one else's; its limits are its
 * own; an image that a stem cell cannot run as its own bytes gets a container of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { SUBJECTS, type Heartbeat } from '@skiff/contracts';
import { packFunction } from '@skiff/image';
import { Platform, REPO, waitUntil } from '@skiff/testkit';

const root = process.getuid?.() === 0;
const ENTRYPOINT = ['/usr/local/bin/node', '/runtime/runtime.mjs'];
const UID_BASE = 100_000_000;
const MIB = 1024 * 1024;

type Seen = {
  timeOrigin: number;
  loadedAt: number;
  uidMap: string;
  gidMap: string;
  uid: number;
  caps: Record<string, string>;
  noNewPrivs: string;
  seccomp: string;
  ns: Record<string, string>;
  pid: number;
  hostname: string;
  mounts: { root: string | null; function: string | null; tmp: string | null };
  tmpBytes: number;
  writes: Record<string, string>;
  code: string;
  cwd: string;
  env: Record<string, string>;
  heapLimit: number;
};

describe.skipIf(!root)('stem cells (needs root)', () => {
  let p: Platform;
  let nc: NatsConnection;
  let heartbeats: Heartbeat[] = [];
  let work: string;
  const marker = randomBytes(8).toString('hex');

  /** The inspect function with this run's marker (or another) as its code, packed on the node runtime. */
  async function pack(ref: string, opts: { base?: string; env?: Record<string, string>; marker?: string } = {}): Promise<void> {
    let dir = join(work, 'inspect');
    if (opts.marker) {
      dir = join(work, `inspect-${opts.marker}`);
      cpSync(join(work, 'inspect'), dir, { recursive: true });
      writeFileSync(join(dir, 'marker.txt'), opts.marker);
    }
    await packFunction(p.store, { dir, base: opts.base ?? 'node-runtime:latest', ref, entrypoint: ENTRYPOINT, env: { SKIFF_HANDLER: '/function/index.mjs', ...opts.env } });
  }

  async function deploy(name: string, image: string, settings: Record<string, unknown> = {}): Promise<number> {
    const before = Date.now();
    const res = await p.api('PUT', `/v1/functions/${name}`, { image, mode: 'stream', timeoutMs: 20_000, ...settings });
    expect([200, 201]).toContain(res.status);
    return before;
  }

  async function call(name: string, body: unknown = {}): Promise<{ status: number; json: any }> {
    const res = await p.api('POST', `/v1/functions/${name}/invoke`, body);
    return { status: res.status, json: await res.json() };
  }

  /** Until the node's heartbeat shows every stem cell it keeps booted and waiting. */
  async function stemsSettled(nodeId: string): Promise<void> {
    const start = heartbeats.length;
    await waitUntil(
      async () => heartbeats.slice(start).some((hb) => hb.nodeId === nodeId && !!hb.stems && hb.stems.starting === 0 && hb.stems.waiting >= hb.stems.target && hb.stems.target > 0),
      `stem cells of ${nodeId} booted`,
      60_000,
    );
  }

  const uids = (node: string): Record<string, number> => JSON.parse(readFileSync(join(p.dataDir, 'nodes', node, 'uids.json'), 'utf8'));
  const rangeOf = (node: string, fn: string) => `0 ${UID_BASE + uids(node)[fn]! * 65536} 65536`;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'skiff-stems-'));
    cpSync(join(REPO, 'test/fixtures/functions/node-inspect'), join(work, 'inspect'), { recursive: true });
    writeFileSync(join(work, 'inspect', 'marker.txt'), marker);
    p = await Platform.create();
    nc = await p.nats.connect('gateway'); // watches heartbeats, as a gateway does
    nc.subscribe(SUBJECTS.heartbeat, { callback: (_e, m) => {
        heartbeats.push(m.json<Heartbeat>());
      }, });
    await p.buildNodeRuntime();
    await pack('inspect:latest');
    p.start('scheduler');
    p.start('worker', { SKIFF_NODE_ID: 'stems', SKIFF_STEM_CELLS: '2', SKIFF_STEM_FUNCTIONS: '4' }, 'worker-stems');
    await p.startGateway();
    await p.waitForNodes(['stems']);
    await stemsSettled('stems');
  }, 120_000);
  afterAll(async () => {
    await nc?.close();
    await p?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  let alpha: Seen;
  let alphaDeployed = 0;

  it('serves a function deployed after the stem cells booted from one, in a uid range that becomes its own', async () => {
    alphaDeployed = await deploy('alpha', 'inspect:latest', { tmpMb: 16 });
    const r = await call('alpha');
    expect(r.status).toBe(200);
    alpha = r.json;
    // Its process was running before the function existed: a stem cell, not a container made
    // for it; its code was loaded after the deploy: the first instance, not a warm one.
    expect(alpha.timeOrigin).toBeLessThan(alphaDeployed);
    expect(alpha.loadedAt).toBeGreaterThan(alphaDeployed);
    expect(alpha.uidMap).toBe(rangeOf('stems', 'alpha'));
    expect(alpha.gidMap).toBe(alpha.uidMap);
    // No two functions share a range.
    const slots = Object.values(uids('stems'));
    expect(new Set(slots).size).toBe(slots.length);
  });

  it('is confined like any instance, with its own code, host name, /tmp, working directory and environment', () => {
    expect(alpha.caps).toEqual({ inh: '0000000000000000', prm: '0000000000000000', eff: '0000000000000000', bnd: '0000000000000000', amb: '0000000000000000' });
    expect([alpha.noNewPrivs, alpha.seccomp, alpha.uid]).toEqual(['1', '2', 0]);
    // All seven namespaces its own (this test runs in the host's).
    expect(Object.keys(alpha.ns)).toHaveLength(7);
    for (const [kind, id] of Object.entries(alpha.ns)) expect(id, kind).not.toBe(readlinkSync(`/proc/self/ns/${kind}`));
    expect(alpha.pid).toBe(1);
    expect(alpha.hostname).toBe('alpha');
    expect(alpha.code).toBe(marker);
    expect(alpha.mounts.root?.split(',')).toContain('ro');
    expect(alpha.mounts.function?.split(',')).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev']));
    expect(alpha.writes).toEqual({ function: 'EROFS', root: 'EROFS', tmp: 'written' });
    expect(alpha.tmpBytes).toBe(16 * MIB);
    expect(alpha.cwd).toBe('/function');
    expect(alpha.env).toMatchObject({ SKIFF_FUNCTION: 'alpha', SKIFF_FUNCTION_VERSION: '1', SKIFF_HANDLER: '/function/index.mjs' });
    expect(Object.keys(alpha.env)).not.toContain('SKIFF_STEM');
  });

  it('has its own cgroup limits, set on the stem cell before its code loaded', async () => {
    await stemsSettled('stems');
    const before = await deploy('limited', 'inspect:latest', { memoryMb: 48, maxProcesses: 40, cpus: 0.5 });
    const seen = (await call('limited')).json as Seen;
    expect(seen.timeOrigin).toBeLessThan(before);
    // From the host: the container whose /function holds this run's code, and its cgroup.
    const cg = cgroupOfCodeIn('limited', seen.ns.pid!);
    expect(readCg(cg, 'memory', 'memory.limit_in_bytes', 'memory.max')).toBe(String(48 * MIB));
    expect(readCg(cg, 'pids', 'pids.max', 'pids.max')).toBe('40');
    expect(readCg(cg, 'cpu', 'cpu.cfs_quota_us', 'cpu.max').split(' ')[0]).toBe('50000');
    // Going over the function's 48 MiB is the function's out-of-memory, named with its limit.
    const oom = await p.api('POST', '/v1/functions/limited/invoke', { op: 'alloc', mb: 80 });
    expect(oom.status).toBe(502);
    const problem = (await oom.json()) as { code: string; detail: string };
    expect(problem.code).toBe('SKIFF_OUT_OF_MEMORY');
    expect(problem.detail).toMatch(/memory limit of 48 MiB/);
  });

  it('gives each function a stem cell of its own, refilled: a fresh process, another range, only its own code', async () => {
    // alpha and limited took the two stem cells the node keeps: this one is served by a
    // stem cell started since (the pool refilled).
    await stemsSettled('stems');
    const otherCode = randomBytes(8).toString('hex');
    await pack('inspect-b:latest', { marker: otherCode });
    const before = await deploy('beta', 'inspect-b:latest');
    const beta = (await call('beta')).json as Seen;
    expect(beta.timeOrigin).toBeLessThan(before);
    expect(beta.loadedAt).toBeGreaterThan(before);
    expect(beta.code).toBe(otherCode);
    expect(beta.uidMap).toBe(rangeOf('stems', 'beta'));
    expect(beta.uidMap).not.toBe(alpha.uidMap);
    expect(beta.timeOrigin).not.toBe(alpha.timeOrigin);
    expect(beta.ns.pid).not.toBe(alpha.ns.pid);
  });

  it("serves a new version of a function that ran here from a stem cell kept in that function's own range", async () => {
    await stemsSettled('stems');
    const before = await deploy('alpha', 'inspect:latest', { tmpMb: 16, timeoutMs: 20_001 });
    const v2 = (await call('alpha')).json as Seen;
    expect(v2.env.SKIFF_FUNCTION_VERSION).toBe('2');
    expect(v2.timeOrigin).toBeLessThan(before);
    expect(v2.timeOrigin).not.toBe(alpha.timeOrigin);
    expect(v2.uidMap).toBe(alpha.uidMap);
    expect(v2.code).toBe(marker);
  });

  it('starts a container of its own for an image a stem cell cannot run as its own bytes', async () => {
    await stemsSettled('stems');
    // An image whose own layer replaces the runtime: a stem cell would run the stem's runtime.
    const rt = join(work, 'custom-runtime');
    cpSync(join(REPO, 'functions/runtimes/node'), rt, { recursive: true });
    const source = readFileSync(join(rt, 'runtime.mjs'), 'utf8');
    writeFileSync(join(rt, 'runtime.mjs'), source.replace("import net from 'node:net';", "import net from 'node:net';\nprocess.env.CUSTOM_RUNTIME = 'yes';"));
    await packFunction(p.store, { dir: rt, base: 'node-runtime:latest', ref: 'custom-rt:latest', root: 'runtime', entrypoint: ENTRYPOINT, workdir: '/', exclude: (f) => f.endsWith('.md') });
    await pack('custom:latest', { base: 'custom-rt:latest' });
    const before = await deploy('custom', 'custom:latest');
    const custom = (await call('custom')).json as Seen;
    expect(custom.env.CUSTOM_RUNTIME).toBe('yes');
    expect(custom.timeOrigin).toBeGreaterThan(before);

    // And one that sets what Node.js reads only as it starts.
    await pack('opts:latest', { env: { NODE_OPTIONS: '--max-old-space-size=40' } });
    const before2 = await deploy('opts', 'opts:latest');
    const opts = (await call('opts')).json as Seen;
    expect(opts.heapLimit).toBeLessThan(100 * MIB);
    expect(opts.timeOrigin).toBeGreaterThan(before2);
  });

  it("stops a deleted function's stem cell: nothing runs in its range any more", async () => {
    await stemsSettled('stems');
    const range = Number(alpha.uidMap.split(' ')[1]);
    expect(processesInRange(range)).toBeGreaterThan(0); // its instance, and the stem cell kept for it
    expect((await p.api('DELETE', '/v1/functions/alpha')).status).toBe(204);
    await waitUntil(async () => processesInRange(range) === 0, "alpha's processes gone", 30_000);
  });

  describe('beside a container made for the function', () => {
    let classic: Seen;
    beforeAll(async () => {
      await p.services.find((s) => s.name === 'worker-stems')!.stop();
      p.start('worker', { SKIFF_NODE_ID: 'plain', SKIFF_STEM_CELLS: '0', SKIFF_STEM_FUNCTIONS: '0' }, 'worker-plain');
      await p.waitForNodes(['plain']);
      const before = await deploy('gamma', 'inspect:latest', { tmpMb: 16 });
      classic = (await call('gamma')).json as Seen;
      expect(classic.timeOrigin).toBeGreaterThan(before);
    }, 60_000);

    it('sees the same confinement, mounts and environment from inside as an adopted stem cell', () => {
      // The one difference: an adopted stem cell's /function is a read-only mount of its own,
      // a container made for the function has it on its read-only root.
      const shape = (s: Seen, fn: string) => ({
        ...s,
        mounts: { ...s.mounts, function: (s.mounts.function ?? s.mounts.root)!.split(',').includes('ro') },
        timeOrigin: 0,
        loadedAt: 0,
        ns: Object.keys(s.ns),
        uidMap: s.uidMap.split(' ').map((x, i) => (i === 1 ? 'range' : x)),
        gidMap: s.gidMap.split(' ').map((x, i) => (i === 1 ? 'range' : x)),
        hostname: s.hostname === fn ? 'fn' : s.hostname,
        env: Object.fromEntries(Object.entries(s.env).map(([k, v]) => [k, k === 'SKIFF_FUNCTION' && v === fn ? 'fn' : v])),
      });
      expect(shape(alpha, 'alpha')).toEqual(shape(classic, 'gamma'));
    });
  });

  describe('races with an adoption under way', () => {
    /**
     * A worker whose skiff-stem starts only when the test lets it: its first adoption has taken
     * a stem cell (the function's range, its limits) and waits on the helper meanwhile.
     */
    async function gatedWorker(nodeId: string, previous: string): Promise<{ gate: string; go: () => void }> {
      await p.services.find((s) => s.name === previous)!.stop();
      const gate = mkdtempSync(join(work, 'gate-'));
      const script = join(gate, 'skiff-stem');
      const real = join(REPO, 'services/worker/native/build/skiff-stem');
      writeFileSync(script, `#!/bin/sh\ntouch ${gate}/started\ni=0\nwhile [ ! -e ${gate}/go ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\nexec ${real}\n`, { mode: 0o755 });
      p.start('worker', { SKIFF_NODE_ID: nodeId, SKIFF_STEM_CELLS: '1', SKIFF_STEM_FUNCTIONS: '4', SKIFF_STEM_HELPER: script }, `worker-${nodeId}`);
      await p.waitForNodes([nodeId]);
      await stemsSettled(nodeId);
      return { gate, go: () => writeFileSync(join(gate, 'go'), '') };
    }
    const started = (gate: string) => waitUntil(async () => existsSync(join(gate, 'started')), 'the adoption to reach skiff-stem', 30_000);

    it('a function deleted while it adopts a stem cell leaves nothing running: no instance, no stem cell kept in its range, its cgroups gone', async () => {
      const { gate, go } = await gatedWorker('gated', 'worker-plain');
      await deploy('doomed', 'inspect:latest');
      const pending = p.api('POST', '/v1/functions/doomed/invoke', {});
      await started(gate);
      const range = Number(rangeOf('gated', 'doomed').split(' ')[1]);
      expect((await p.api('DELETE', '/v1/functions/doomed')).status).toBe(204);
      // The worker has drained the function's pool when its waiting call is refused.
      expect((await pending).status).toBe(503);
      go();
      await waitUntil(async () => processesInRange(range) === 0 && !cgroupExists('skiff/doomed'), "doomed's processes and cgroups gone", 30_000);
      // And stays so: the stem cell pool has settled again, keeping none for it.
      await stemsSettled('gated');
      expect(processesInRange(range)).toBe(0);
    });

    it("a stem cell whose runtime dies while it is adopted: the function gets a container of its own, and the pool refills", async () => {
      const { gate, go } = await gatedWorker('gated2', 'worker-gated');
      const bundles = join(p.dataDir, 'nodes', 'gated2', 'bundles');
      const stemPids = readdirSync(bundles).filter((id) => existsSync(join(bundles, id, 'pid'))).map((id) => Number(readFileSync(join(bundles, id, 'pid'), 'utf8')));
      expect(stemPids).toHaveLength(1);
      const before = await deploy('phoenix', 'inspect:latest', { tmpMb: 16 });
      const pending = p.api('POST', '/v1/functions/phoenix/invoke', {});
      await started(gate);
      process.kill(stemPids[0]!, 'SIGKILL');
      await waitUntil(async () => !existsSync(`/proc/${stemPids[0]}`) || readFileSync(`/proc/${stemPids[0]}/stat`, 'utf8').split(') ')[1]![0] === 'Z', 'the stem cell to die', 10_000);
      go();
      const res = await pending;
      expect(res.status).toBe(200);
      const seen = (await res.json()) as Seen;
      expect(seen.timeOrigin).toBeGreaterThan(before); // a container made for it
      expect([seen.code, seen.hostname, seen.tmpBytes, seen.uidMap]).toEqual([marker, 'phoenix', 16 * MIB, rangeOf('gated2', 'phoenix')]);
      await stemsSettled('gated2');
    });
  });

  /** The cgroup (its path in the hierarchy) of the running container of `fn` with this run's code at /function. */
  function cgroupOfCodeIn(fn: string, pidNs: string): string {
    const bundles = join(p.dataDir, 'nodes', 'stems', 'bundles');
    for (const id of readdirSync(bundles)) {
      const pidFile = join(bundles, id, 'pid');
      if (!existsSync(pidFile)) continue;
      const pid = readFileSync(pidFile, 'utf8').trim();
      try {
        if (readFileSync(`/proc/${pid}/root/function/marker.txt`, 'utf8') !== marker) continue;
        if (readlinkSync(`/proc/${pid}/ns/pid`) !== pidNs) continue;
        // v1: "N:memory:/path"; v2: "0::/path". Read from the host, the path is the whole one.
        const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.includes(':memory:')) ?? readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'));
        return line!.slice(line!.indexOf(':', line!.indexOf(':') + 1) + 1);
      } catch {
        continue;
      }
    }
    throw new Error(`no container of ${fn} found`);
  }
});

/** A cgroup file of the container's cgroup: v1 in its controller's hierarchy, v2 in the one. */
function readCg(cg: string, controller: string, v1: string, v2: string): string {
  const unified = existsSync('/sys/fs/cgroup/cgroup.controllers');
  return readFileSync(unified ? join('/sys/fs/cgroup', cg, v2) : join('/sys/fs/cgroup', controller, cg, v1), 'utf8').trim();
}

/** Whether a cgroup exists, in the memory hierarchy (v1) or the unified one. */
function cgroupExists(cg: string): boolean {
  return existsSync(join('/sys/fs/cgroup', cg)) || existsSync(join('/sys/fs/cgroup/memory', cg));
}

/** Processes on the host whose real uid lies in the 65536 ids from `first`. */
function processesInRange(first: number): number {
  let n = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
      if (uid >= first && uid < first + 65536) n++;
    } catch {
      // gone meanwhile
    }
  }
  return n;
}
