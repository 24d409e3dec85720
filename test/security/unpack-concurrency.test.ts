// docs/security.md #10: two unpacks of the same image at once never corrupt the cache, in
// either public path, and a failing unpack next to a good one leaves the good one whole.
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LayerCache } from '../../services/image/src/layer-cache.js';
import { unpackLayers } from '../../services/image/src/layered.js';
import { attackContext, rawTar, storeImage } from '../../services/image/src/testkit.js';
import { unpackImage } from '../../services/image/src/unpack.js';

const roots: string[] = [];
afterAll(async () => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));
const privileged = process.getuid?.() === 0;

const files = Array.from({ length: 200 }, (_v, i) => ({ name: `d${i % 10}/f${i}`, data: `content ${i}`.repeat(50) }));

describe('item 10: concurrent unpacks', () => {
  it('flat: four unpacks of one image to one dest all succeed and leave one whole tree', async () => {
    const c = await attackContext();
    roots.push(c.root);
    const desc = await storeImage(c.store, [{ tar: await rawTar(files) }]);
    const dest = join(c.root, 'out', 'rootfs');
    const results = await Promise.all([1, 2, 3, 4].map(() => unpackImage(c.store, desc.digest, dest)));
    expect(results.every((r) => r.dir === dest)).toBe(true);
    expect(await readdir(join(c.root, 'out'))).toEqual(['rootfs']);
    expect(await readFile(join(dest, 'd7/f197'), 'utf8')).toBe('content 197'.repeat(50));
  });

  it.skipIf(!privileged)('layered: separate caches (as separate processes) unpacking one layer at once both succeed (needs root)', async () => {
    const c = await attackContext();
    roots.push(c.root);
    const desc = await storeImage(c.store, [{ tar: await rawTar(files) }, { tar: await rawTar([{ name: 'top', data: 't' }]) }]);
    const dir = join(c.root, 'layers');
    const runs = await Promise.all([1, 2, 3].map(() => unpackLayers(c.store, desc.digest, new LayerCache(dir))));
    expect(new Set(runs.map((r) => r.layers[0]!.dir)).size).toBe(1);
    const names = await readdir(dir);
    expect(names.filter((n) => n.startsWith('.'))).toEqual([]);
    expect(names.filter((n) => n.startsWith('sha256-'))).toHaveLength(2);
    expect(await readFile(join(runs[0]!.layers[0]!.dir, 'd3/f13'), 'utf8')).toBe('content 13'.repeat(50));
  });

  it.skipIf(!privileged)('layered: a hostile image sharing the cache with a good one fails alone (needs root)', async () => {
    const c = await attackContext();
    roots.push(c.root);
    const good = await storeImage(c.store, [{ tar: await rawTar(files) }], 'good:1');
    const bad = await storeImage(c.store, [{ tar: await rawTar([...files.slice(0, 50), { name: '../escape', data: 'x' }]) }], 'bad:1');
    const cache = new LayerCache(join(c.root, 'layers'));
    const [g, b] = await Promise.allSettled([unpackLayers(c.store, good.digest, cache), unpackLayers(c.store, bad.digest, cache)]);
    expect(g.status).toBe('fulfilled');
    expect(b).toMatchObject({ status: 'rejected', reason: { code: 'SKIFF_LAYER_UNSAFE' } });
    expect((await readdir(cache.root)).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(await cache.list()).toHaveLength(1);
  });
});
