import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Platform, REPO, existingCgroupDirs, waitUntil, type Service } from '@skiff/testkit';

// cgroups are /skiff/<fn>/<instance> on the whole host: names of this run's own.
const run = randomBytes(3).toString('hex');

/** Running containers of `fn`: its instance cgroups (in the first hierarchy that has it). */
const containers = (fn: string) => {
  const dir = existingCgroupDirs(`/skiff/${fn}`)[0];
  return dir ? readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).length : 0;
};

/** A process's resident memory (VmRSS) and the most it has had (VmHWM), MiB, from /proc. */
const memoryMiB = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(status)![1]) / 1024;
  return { rss: field('VmRSS'), peak: field('VmHWM') };
};

/**
 * docs/security.md #27 and #28: one busy function must not starve the others of a node's exec
 * slots or of its memory for warm instances, and a function's output must not grow the worker's
 * memory.
 */
describe('one function must not starve the rest', () => {
  let p: Platform;
  let worker: Service;
  const slow = `slow-${run}`;
  const flood = `flood-${run}`;
  const loud = `loud-${run}`;
  const sleeper = `sleeper-${run}`;
  const hello = `hello-${run}`;
  const dir = mkdtempSync(join(tmpdir(), 'skiff-starve-fn-'));
  const invoke = (name: string, body = '') => p.api('POST', `/v1/functions/${name}/invoke`, body);

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.buildNodeRuntime();
    p.start('scheduler');
    // 4 slots: one function may hold 3 of them (the default share), 1 stays for the others.
    // 640 MiB for warm instances: five of 128 MiB, of which one function may hold 480 MiB (3).
    worker = p.start('worker', { SKIFF_NODE_ID: 'node-a', SKIFF_WORKER_SLOTS: '4', SKIFF_WORKER_MEMORY_MB: '640', SKIFF_STEM_CELLS: '0', SKIFF_STEM_FUNCTIONS: '0' }, 'worker-node-a');
    await p.startGateway();
    await p.waitForNodes(['node-a'], 30_000);
    expect((await p.deploy('echo', join(REPO, 'functions/echo'), ['/bin/sh', '/function/handler.sh'])).status).toBe(201);
    writeFileSync(join(dir, 'slow.sh'), 'exec sleep 30\n');
    // The deadline ends the slow calls: a few seconds, so the suite does not wait 30 s for them.
    expect((await p.deploy(slow, dir, ['/bin/sh', '/function/slow.sh'], { timeoutMs: 6000 })).status).toBe(201);
    writeFileSync(join(dir, 'loud.sh'), [
      'if [ "$(cat)" = stdout ]; then head -c 8388608 /dev/zero; exit 0; fi',
      "head -c 20971520 /dev/zero | tr '\\0' x >&2",
      'echo " last words" >&2',
      'exit 3',
      '',
    ].join('\n'));
    expect((await p.deploy(loud, dir, ['/bin/sh', '/function/loud.sh'])).status).toBe(201);
    expect((await p.deployNode(flood, join(REPO, 'test/security/fixtures/stderr-flood'), { maxInstances: 1 })).status).toBe(201);
    expect((await p.deployNode(sleeper, join(REPO, 'test/security/fixtures/sleeper'), { maxInstances: 10, memoryMb: 128, timeoutMs: 20_000 })).status).toBe(201);
    expect((await p.deployNode(hello, join(REPO, 'functions/hello'), { memoryMb: 128 })).status).toBe(201);
  }, 120_000);
  afterAll(async () => {
    await p?.close();
    for (const d of [slow, flood, loud, sleeper, hello].flatMap((fn) => existingCgroupDirs(`/skiff/${fn}`))) {
      try {
        rmdirSync(d);
      } catch {}
    }
  });

  it('answers echo while a slow function fills the node and queues more calls', async () => {
    const calls = 12;
    let slowAnswered = 0;
    const slowCalls = Array.from({ length: calls }, () =>
      invoke(slow).then(async (res) => {
        slowAnswered++;
        return { status: res.status, code: res.status === 200 ? undefined : ((await res.json()) as { code: string }).code };
      }),
    );
    // The slow function holds its share of the node (3 running), the other 9 wait on the worker.
    await waitUntil(async () => containers(slow) === 3, `${slow} to hold 3 slots`);
    await waitUntil(async () => {
      const res = await p.api('GET', '/v1/nodes');
      const { nodes } = (await res.json()) as { nodes: { inflight: number }[] };
      return nodes[0]?.inflight === calls;
    }, `the worker to hold all ${calls} slow calls`);

    const res = await invoke('echo', 'still served');
    expect(await res.text()).toBe('still served');
    expect(res.status).toBe(200);
    // Answered while every slow call was still pending: 3 running, 9 queued behind them.
    const state = { slowAnswered, slowRunning: containers(slow) };
    expect(state).toEqual({ slowAnswered: 0, slowRunning: 3 });

    const outcomes = await Promise.all(slowCalls);
    // None finished: the running ones end at their deadline (504), the queued ones give up
    // waiting for a slot just before theirs (503 SKIFF_NO_CAPACITY, or 504 if the gateway's deadline came first).
    expect(outcomes.filter((o) => o.status !== 504 && o.code !== 'SKIFF_NO_CAPACITY')).toEqual([]);
  }, 60_000);

  it('starts an instance of another function while one function\'s burst holds its share of the memory for warm instances', async () => {
    const calls = 6;
    let sleeperAnswered = 0;
    let mostContainers = 0;
    const sleeperCalls = Array.from({ length: calls }, () =>
      p.api('POST', `/v1/functions/${sleeper}/invoke`, { ms: 4000 }).then(async (res) => {
        sleeperAnswered++;
        return { status: res.status, body: await res.text() };
      }),
    );
    // Three instances (480 of the 640 MiB): the other three calls wait on the worker for them.
    await waitUntil(async () => {
      mostContainers = Math.max(mostContainers, containers(sleeper));
      return mostContainers >= 3;
    }, `${sleeper} to run 3 instances`);

    const res = await p.api('POST', `/v1/functions/${hello}/invoke`, { name: 'Ada' });
    expect(await res.json()).toEqual({ greeting: 'Hello, Ada!' });
    expect(res.status).toBe(200);
    mostContainers = Math.max(mostContainers, containers(sleeper));
    expect({ sleeperAnswered, mostContainers }).toEqual({ sleeperAnswered: 0, mostContainers: 3 });

    // The burst is served in two rounds on its three instances, none lost.
    const outcomes = await Promise.all(sleeperCalls);
    expect(outcomes).toEqual(Array.from({ length: calls }, () => ({ status: 200, body: 'slept' })));
    expect(containers(sleeper)).toBeLessThanOrEqual(3);
  }, 90_000);

  it('keeps the worker\'s memory bounded when a function writes 20 MiB of stderr without a newline, and cuts the line with a marker', async () => {
    const floodBytes = 320 * 64 * 1024;
    const maxLine = 16 * 1024; // SKIFF_MAX_LOG_LINE_BYTES' default
    expect(await (await invoke(flood, 'end')).text()).toBe('ended'); // the instance is up
    const log = join(p.dataDir, 'worker-node-a.log');
    const linesAfter = () => readFileSync(log, 'utf8').split('\n').filter((l) => l.includes('"msg":"the line after the flood"')).length;
    await waitUntil(async () => linesAfter() === 1, 'the first line in the worker log');
    const before = memoryMiB(worker.child.pid!);
    expect(await (await invoke(flood, 'flood')).text()).toBe('flooded');
    expect(await (await invoke(flood, 'end')).text()).toBe('ended');
    // The function's stderr is a socket: its writes may still be on their way. Once the line
    // after the flood is in the log, the worker has read every byte of it.
    await waitUntil(async () => linesAfter() === 2, 'the line after the flood in the worker log', 60_000);
    const after = memoryMiB(worker.child.pid!);
    const grew = `worker RSS ${before.rss.toFixed(1)} → ${after.rss.toFixed(1)} MiB, peak ${before.peak.toFixed(1)} → ${after.peak.toFixed(1)} MiB`;
    // The peak too: memory held while the flood passed and freed since counts as well.
    expect(after.rss - before.rss, grew).toBeLessThan(64);
    expect(after.peak - before.peak, grew).toBeLessThan(64);

    const marker = `[cut: ${floodBytes - maxLine} more bytes]`;
    const line = readFileSync(log, 'utf8').split('\n').find((l) => l.includes(marker));
    expect(line, 'the cut line').toBeDefined();
    expect((JSON.parse(line!) as { msg: string }).msg).toBe(`${'x'.repeat(maxLine)} ${marker}`);
    // and the worker goes on
    expect(await (await invoke('echo', 'after the flood')).text()).toBe('after the flood');
  }, 120_000);

  it('keeps only the end of an exec function\'s stderr and stops one whose output is over SKIFF_MAX_OUTPUT_BYTES', async () => {
    const before = memoryMiB(worker.child.pid!);
    const failed = await invoke(loud, 'stderr');
    expect(failed.status).toBe(502);
    const problem = (await failed.json()) as { code: string; detail: string };
    expect(problem.code).toBe('SKIFF_FN_FAILED');
    // 20 MiB of stderr, of which the error detail has the last 2 KiB
    expect(problem.detail).toMatch(/x last words$/);
    expect(problem.detail.length).toBeLessThan(4096);
    const tooLarge = await invoke(loud, 'stdout');
    expect(tooLarge.status).toBe(502);
    expect(((await tooLarge.json()) as { code: string }).code).toBe('SKIFF_FN_OUTPUT_TOO_LARGE');
    const after = memoryMiB(worker.child.pid!);
    expect(after.peak - before.peak, `worker peak RSS ${before.peak.toFixed(1)} → ${after.peak.toFixed(1)} MiB`).toBeLessThan(64);
  }, 60_000);
});
