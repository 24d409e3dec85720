// docs/security.md #7 through both public unpack paths: every limit trips with a clear
// error naming it, and the partial result (tree, temp layer directories) is removed.
import { readFile, rm } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import type { UnpackLimits } from '../../services/image/src/limits.js';
import { attackContext, rawTar, unpackVia, type TestLayer, type UnpackPath } from '../../services/image/src/testkit.js';

const roots: string[] = [];
afterAll(async () => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));
const privileged = process.getuid?.() === 0;

async function refused(path: UnpackPath, layers: TestLayer[], text: string, limits?: Partial<UnpackLimits>, code = 'SKIFF_LAYER_UNSAFE') {
  const c = await attackContext();
  roots.push(c.root);
  await expect(unpackVia(path, c.store, c.root, layers, limits ? { limits } : {})).rejects.toMatchObject({ name: 'SkiffError', code, message: expect.stringContaining(text) });
  expect(await c.leftovers()).toEqual([]);
  expect(await readFile(c.victim, 'utf8')).toBe('original');
}

describe.each<UnpackPath>(privileged ? ['flat', 'layered'] : ['flat'])('%s unpack (layered needs root)', (path) => {
  it('stops a gzip bomb while streaming: 64 MiB of zeros against an 8 MiB budget', async () => {
    const tar = await rawTar([{ name: 'bomb', data: Buffer.alloc(64 * 1024 * 1024) }]);
    // Cut in half, the blob still inflates to about 32 MiB before it ends too soon: a limit
    // checked only after inflating would meet the truncation first and say that instead.
    const blob = gzipSync(tar, { level: 9 });
    await refused(path, [{ tar, blob: blob.subarray(0, blob.length >> 1) }], 'maxBytes', { maxBytes: 8 * 1024 * 1024 });
  });

  it('refuses a huge declared size with little data behind it', async () => {
    const tar = await rawTar([{ name: 'huge', data: 'x' }]);
    // Size field of the first header: 077777777777 octal (~8 GiB); the data is not there.
    tar.write('77777777777\0', 124, 'latin1');
    let sum = 0;
    tar.fill(0x20, 148, 156);
    for (const b of tar.subarray(0, 512)) sum += b;
    tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    await refused(path, [{ tar }], 'layer 0', undefined, 'SKIFF_IMAGE_INVALID');
  });

  it('trips maxEntries on many entries', async () => {
    const entries = Array.from({ length: 300 }, (_v, i) => ({ name: `f${i}`, data: '' }));
    await refused(path, [{ tar: await rawTar(entries) }], 'maxEntries', { maxEntries: 250 });
  });

  it('counts entries across layers', async () => {
    const layer = async (p: string) => ({ tar: await rawTar(Array.from({ length: 100 }, (_v, i) => ({ name: `${p}${i}`, data: '' }))) });
    await refused(path, [await layer('a'), await layer('b')], 'maxEntries', { maxEntries: 150 });
  });

  it('trips maxDepth on deep nesting', async () => {
    const deep = Array.from({ length: 40 }, () => 'd').join('/');
    await refused(path, [{ tar: await rawTar([{ name: `${deep}/f`, data: 'x' }]) }], 'maxDepth', { maxDepth: 32 });
  });

  it('trips maxPathLength on a long name (pax path)', async () => {
    await refused(path, [{ tar: await rawTar([{ name: 'x', pax: { path: 'n'.repeat(5000) }, data: 'x' }]) }], 'maxPathLength');
  });

  it('trips maxPathLength on a long symlink target', async () => {
    await refused(path, [{ tar: await rawTar([{ name: 'l', type: 'symlink', linkname: 't'.repeat(5000) }]) }], 'maxPathLength');
  });
});
