import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeEmptyFunctionCgroups, removeFunctionCgroups } from './cgroups.js';

// Plain directories shaped like the cgroup mounts: rmdir behaves alike (only empty ones go).
describe('function cgroups', () => {
  let root: string;
  const dir = (...p: string[]) => join(root, ...p);

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'skiff-cgroups-'));
    for (const h of ['memory', 'pids', 'cpu,cpuacct', 'unified']) mkdirSync(dir(h, 'skiff', 'a'), { recursive: true });
    symlinkSync('cpu,cpuacct', dir('cpu')); // as v1 mounts it
    mkdirSync(dir('skiff', 'a'), { recursive: true }); // v2 at the root
    mkdirSync(dir('memory', 'skiff', 'busy', 'instance-1'), { recursive: true });
    mkdirSync(dir('pids', 'skiff', 'busy'), { recursive: true });
    mkdirSync(dir('memory', 'other', 'a'), { recursive: true }); // not Skiff's
    writeFileSync(dir('cgroup.procs'), '');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('removes the function cgroup in every hierarchy', async () => {
    expect(await removeFunctionCgroups('a', root)).toBe(true);
    for (const h of ['memory', 'pids', 'cpu,cpuacct', 'unified', '.']) expect(existsSync(dir(h, 'skiff', 'a'))).toBe(false);
    expect(existsSync(dir('memory', 'skiff'))).toBe(true);
    expect(existsSync(dir('memory', 'other', 'a'))).toBe(true);
    expect(await removeFunctionCgroups('a', root)).toBe(true); // nothing left is done
  });

  it('leaves a cgroup that still has a container in it, and says so', async () => {
    expect(await removeFunctionCgroups('busy', root)).toBe(false);
    expect(existsSync(dir('memory', 'skiff', 'busy', 'instance-1'))).toBe(true);
    expect(existsSync(dir('pids', 'skiff', 'busy'))).toBe(false);
  });

  it('sweeps every empty function cgroup', async () => {
    expect(await removeEmptyFunctionCgroups(root)).toBe(6); // a ×5, busy in pids
    expect(existsSync(dir('memory', 'skiff', 'busy'))).toBe(true);
  });

  it('reports a cgroup it may not remove, rather than waiting for it', async () => {
    const file = dir('pids', 'skiff', 'a');
    rmSync(file, { recursive: true });
    writeFileSync(file, ''); // rmdir on a file: ENOTDIR, as EACCES would be: not a matter of time
    await expect(removeFunctionCgroups('a', root)).rejects.toThrow(/ENOTDIR/);
  });

  it('refuses a name that is not one path component', async () => {
    for (const bad of ['', '.', '..', 'a/b']) await expect(removeFunctionCgroups(bad, root)).rejects.toThrow(/not a function name/);
  });
});
