import { chmod, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ImageStore } from './store.js';
import { packFunction, mergeEnv } from './pack.js';
import { rawTar, storeImage } from './testkit.js';
import { unpackImage } from './unpack.js';

const temps: string[] = [];
async function temp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'skiff-pack-'));
  temps.push(d);
  return d;
}
afterEach(async () => {
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** A store holding a one-layer base image "base:latest" (Env PATH, Cmd /bin/sh), and a function dir. */
async function fixture() {
  const root = await temp();
  const store = await ImageStore.open(join(root, 'store'));
  await storeImage(store, [{ tar: await rawTar([{ name: 'bin/', type: 'directory' }, { name: 'bin/sh', mode: 0o755, data: 'sh' }]) }], 'base');
  const base = await store.resolve('base');
  base.config.config = { Env: ['PATH=/bin', 'LANG=C'], Cmd: ['/bin/sh'], Labels: { from: 'base' } };
  // Re-commit the base with a richer config via the public pieces.
  const { commitImage } = await import('./commit.js');
  await commitImage(store, base.config, base.manifest.layers, 'base');
  const dir = join(root, 'fn');
  await mkdir(join(dir, 'lib/deep'), { recursive: true });
  await writeFile(join(dir, 'handler.sh'), '#!/bin/sh\necho hi\n');
  await chmod(join(dir, 'handler.sh'), 0o750);
  await writeFile(join(dir, 'lib/deep/data.txt'), 'data');
  await symlink('lib/deep/data.txt', join(dir, 'link'));
  await mkdir(join(dir, 'node_modules/.cache'), { recursive: true });
  await writeFile(join(dir, 'node_modules/.cache/junk'), 'junk');
  return { root, store, dir };
}

describe('packFunction', () => {
  it('adds the directory under /function as one layer and sets the config', async () => {
    const { root, store, dir } = await fixture();
    const desc = await packFunction(store, {
      dir, base: 'base', ref: 'echo:1',
      entrypoint: ['/function/handler.sh'], env: { LANG: 'C.UTF-8', MODE: 'fast' }, labels: { fn: 'echo' },
      exclude: (p) => p === 'node_modules' || p.startsWith('node_modules/'),
    });
    const img = await store.resolve('echo:1');
    expect(img.digest).toBe(desc.digest);
    expect(img.manifest.layers).toHaveLength(2);
    expect(img.config.rootfs.diff_ids).toHaveLength(2);
    expect(img.config.config).toEqual({
      Env: ['PATH=/bin', 'LANG=C.UTF-8', 'MODE=fast'],
      Entrypoint: ['/function/handler.sh'],
      WorkingDir: '/function',
      Labels: { fn: 'echo' },
    });
    expect(img.config.history?.at(-1)).toMatchObject({ created_by: 'skiff packFunction' });

    const dest = join(root, 'rootfs');
    await unpackImage(store, desc.digest, dest);
    expect(await readFile(join(dest, 'bin/sh'), 'utf8')).toBe('sh');
    expect((await lstat(join(dest, 'function/handler.sh'))).mode & 0o7777).toBe(0o750);
    expect(await readFile(join(dest, 'function/lib/deep/data.txt'), 'utf8')).toBe('data');
    expect(await readlink(join(dest, 'function/link'))).toBe('lib/deep/data.txt');
    await expect(lstat(join(dest, 'function/node_modules'))).rejects.toThrow();
  });

  it('keeps the base Cmd unless an entrypoint replaces it, and honours workdir', async () => {
    const { store, dir } = await fixture();
    await packFunction(store, { dir, base: 'base:latest', ref: 'a', workdir: '/srv' });
    expect((await store.resolve('a')).config.config).toMatchObject({ Cmd: ['/bin/sh'], WorkingDir: '/srv', Labels: { from: 'base' } });
    await packFunction(store, { dir, base: 'base', ref: 'b', entrypoint: ['/x'], cmd: ['y'] });
    expect((await store.resolve('b')).config.config).toMatchObject({ Entrypoint: ['/x'], Cmd: ['y'] });
  });

  it('is deterministic', async () => {
    const { store, dir } = await fixture();
    const a = await packFunction(store, { dir, base: 'base', ref: 'x:1' });
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(join(dir, 'handler.sh'), '#!/bin/sh\necho hi\n'); // same bytes, new mtime
    const b = await packFunction(store, { dir, base: 'base', ref: 'x:2' });
    expect(b.digest).toBe(a.digest);
    await writeFile(join(dir, 'handler.sh'), 'changed');
    const c = await packFunction(store, { dir, base: 'base', ref: 'x:3' });
    expect(c.digest).not.toBe(a.digest);
  });

  it('fails on an unknown base with SKIFF_IMAGE_NOT_FOUND', async () => {
    const { store, dir } = await fixture();
    await expect(packFunction(store, { dir, base: 'nope', ref: 'x' })).rejects.toMatchObject({ code: 'SKIFF_IMAGE_NOT_FOUND', message: expect.stringContaining('nope:latest') });
  });

  it('fails on a missing directory with SKIFF_VALIDATION_FAILED', async () => {
    const { root, store } = await fixture();
    await expect(packFunction(store, { dir: join(root, 'missing'), base: 'base', ref: 'x' })).rejects.toMatchObject({ code: 'SKIFF_VALIDATION_FAILED' });
  });
});

describe('mergeEnv', () => {
  it('keeps base order, replaces in place, appends new keys, refuses bad names', () => {
    expect(mergeEnv(['A=1', 'B=2'], { B: '3', C: '4' })).toEqual(['A=1', 'B=3', 'C=4']);
    expect(mergeEnv(undefined, { X: 'y=z' })).toEqual(['X=y=z']);
    expect(() => mergeEnv([], { 'BAD=KEY': 'v' })).toThrow(/invalid/);
  });
});
