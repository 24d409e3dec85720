import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { removeLeftovers } from './leftovers.js';

/** A stand-in cgroup tree (plain directories: the v1 layout, one hierarchy per controller). */
describe('removeLeftovers', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  function setup() {
    const base = mkdtempSync(join(tmpdir(), 'skiff-leftovers-'));
    dirs.push(base);
    const cgroupRoot = join(base, 'cgroup');
    const work = join(base, 'nodes', 'node-a');
    const bundle = (id: string, cgroupsPath: string, node = work) => {
      mkdirSync(join(node, 'bundles', id), { recursive: true });
      writeFileSync(join(node, 'bundles', id, 'config.json'), JSON.stringify({ linux: { cgroupsPath } }));
    };
    const cgroup = (path: string) => {
      for (const h of ['memory', 'pids']) mkdirSync(join(cgroupRoot, h, path), { recursive: true });
      return ['memory', 'pids'].map((h) => join(cgroupRoot, h, path));
    };
    const run = () => removeLeftovers({ runtime: '/bin/true', bundlesDir: join(work, 'bundles'), imagesDir: join(work, 'images'), log: pino({ level: 'silent' }), cgroupRoot });
    return { base, work, bundle, cgroup, run };
  }

  it("removes the cgroups its bundles name (a function's container and a stem cell), and the bundles", async () => {
    const t = setup();
    t.bundle('a1', '/skiff/echo/a1');
    t.bundle('s1', '/skiff/@stem/s1');
    const mine = [...t.cgroup('/skiff/echo/a1'), ...t.cgroup('/skiff/@stem/s1')];
    expect(await t.run()).toMatchObject({ containers: 2, cgroups: 4 });
    for (const d of mine) expect(existsSync(d), d).toBe(false);
    expect(existsSync(join(t.work, 'bundles'))).toBe(false);
  });

  it("leaves another node's cgroups alone, and a cgroup no bundle of this node names", async () => {
    const t = setup();
    t.bundle('b1', '/skiff/echo/b1', join(t.base, 'nodes', 'node-b'));
    const others = [...t.cgroup('/skiff/echo/b1'), ...t.cgroup('/skiff/echo/unnamed')];
    expect(await t.run()).toMatchObject({ containers: 0, cgroups: 0 });
    for (const d of others) expect(existsSync(d), d).toBe(true);
    expect(existsSync(join(t.base, 'nodes', 'node-b', 'bundles', 'b1'))).toBe(true);
  });

  it('touches nothing outside the container cgroups a bundle may name', async () => {
    const t = setup();
    t.bundle('x1', '/skiff/../victim');
    t.bundle('x2', '/elsewhere/x2');
    const outside = [...t.cgroup('/victim'), ...t.cgroup('/elsewhere/x2')];
    expect(await t.run()).toMatchObject({ containers: 2, cgroups: 0 });
    for (const d of outside) expect(existsSync(d), d).toBe(true);
  });
});
