import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Platform, REPO } from '@skiff/testkit';

const ROOT = '/sys/fs/cgroup';
const isRoot = process.getuid?.() === 0;

/** Every /sys/fs/cgroup[/<hierarchy>]/skiff/<fn> that exists now. */
function functionCgroups(fn: string): string[] {
  const hierarchies = [ROOT, ...readdirSync(ROOT, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(ROOT, e.name))];
  return hierarchies.map((h) => join(h, 'skiff', fn)).filter((d) => existsSync(d));
}

async function eventually(check: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !check() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 100));
}

describe.skipIf(!isRoot)('what a worker cleans up (skipped: containers need root)', () => {
  let p: Platform;
  const fn = `cg-${randomBytes(4).toString('hex')}`;
  // A bundle a worker that died left behind.
  let staleBundle: string;
  // An empty function cgroup a worker left behind, as if it had been killed: in the memory
  // hierarchy (v1), else in the v2 one.
  const stale = join(existsSync(join(ROOT, 'memory')) ? join(ROOT, 'memory') : ROOT, 'skiff', `stale-${randomBytes(4).toString('hex')}`);

  beforeAll(async () => {
    mkdirSync(stale, { recursive: true });
    p = await Platform.create();
    staleBundle = join(p.dataDir, 'nodes', 'node-a', 'bundles', 'from-before');
    mkdirSync(staleBundle, { recursive: true });
    writeFileSync(join(staleBundle, 'config.json'), '{}');
    await p.buildBase();
    await p.startAll('node-a');
  });
  afterAll(async () => {
    await p?.close();
    for (const d of [stale, ...functionCgroups(fn)]) if (existsSync(d)) rmdirSync(d);
  });

  it('removes the bundles left from before when the worker starts', () => {
    expect(existsSync(staleBundle)).toBe(false);
  });

  it('removes the empty function cgroups left from before when the worker starts', async () => {
    await eventually(() => !existsSync(stale));
    expect(existsSync(stale)).toBe(false);
  });

  it('removes a deleted function cgroups once its containers are gone', async () => {
    expect((await p.deploy(fn, join(REPO, 'functions/echo'), ['/bin/sh', '/function/handler.sh'])).status).toBe(201);
    const res = await p.api('POST', `/v1/functions/${fn}/invoke`, 'hello');
    expect(res.status).toBe(200);
    // The launcher removes the container's own cgroup (just after it answers); the function's
    // stays for its next container.
    const made = functionCgroups(fn);
    expect(made.length).toBeGreaterThan(0);
    const children = () => made.flatMap((d) => readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name));
    await eventually(() => children().length === 0);
    expect(children()).toEqual([]);
    expect(functionCgroups(fn)).toEqual(made);

    expect((await p.api('DELETE', `/v1/functions/${fn}`)).status).toBe(204);
    await eventually(() => functionCgroups(fn).length === 0);
    expect(functionCgroups(fn)).toEqual([]);
  });
});
