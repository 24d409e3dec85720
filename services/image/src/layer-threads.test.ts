import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LayerCache, type LayerEvent } from './layer-cache.js';
import { unpackLayers } from './layered.js';
import { ImageStore } from './store.js';
import { rawTar, storeImage } from './testkit.js';
import { unpackImage } from './unpack.js';

const roots: string[] = [];
afterAll(async () => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));
const privileged = process.getuid?.() === 0;

async function setup(): Promise<{ root: string; store: ImageStore }> {
  const root = await mkdtemp(join(tmpdir(), 'skiff-threads-'));
  roots.push(root);
  return { root, store: await ImageStore.open(join(root, 'store')) };
}

/** A file named `name` anywhere below `dir` (temp trees included), looked for synchronously. */
function written(dir: string, name: string): boolean {
  if (!existsSync(dir)) return false;
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).some((p) => p === name || p.endsWith(`/${name}`));
}

/**
 * Lets the event loop turn until `first` is written (the layer thread has its job), then
 * blocks this thread, without turning the loop, until `last` is written too. Returns
 * whether it was: the rest of the layer went on while the caller could do nothing.
 */
async function progressesWhileBlocked(dir: string, first: string, last: string): Promise<boolean> {
  while (!written(dir, first)) await new Promise((r) => setImmediate(r));
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  // Generous: on a loaded machine the thread may be slow; without it nothing ever appears.
  for (let i = 0; i < 3000; i++) {
    if (written(dir, last)) return true;
    Atomics.wait(sleeper, 0, 0, 10);
  }
  return false;
}

const layer = async () => rawTar([{ name: 'big', data: Buffer.alloc(24 * 1024 * 1024, 7) }, { name: 'last', data: 'end' }]);

describe('layer threads: unpacking never needs the calling thread', () => {
  it('unpackImage: the layer is written while the caller is blocked', async () => {
    const { root, store } = await setup();
    const desc = await storeImage(store, [{ tar: await layer() }]);
    const dest = join(root, 'out', 'rootfs');
    const unpacking = unpackImage(store, desc.digest, dest);
    expect(await progressesWhileBlocked(join(root, 'out'), 'big', 'last')).toBe(true);
    await unpacking;
    expect(await readFile(join(dest, 'last'), 'utf8')).toBe('end');
  });

  it.skipIf(!privileged)('unpackLayers: the layer is written while the caller is blocked, progress is reported (needs root)', async () => {
    const { root, store } = await setup();
    const desc = await storeImage(store, [{ tar: await layer() }]);
    const events: LayerEvent[] = [];
    const unpacking = unpackLayers(store, desc.digest, new LayerCache(join(root, 'layers')), { onEvent: (e) => events.push(e) });
    expect(await progressesWhileBlocked(join(root, 'layers'), 'big', 'last')).toBe(true);
    const { layers } = await unpacking;
    expect(await readFile(join(layers[0]!.dir, 'last'), 'utf8')).toBe('end');
    expect(events.filter((e) => e.type === 'layer-progress').length).toBeGreaterThan(0);
    expect(events.map((e) => e.type).filter((t) => t !== 'layer-progress')).toEqual(['layer-start', 'layer-done']);
  });

  it.skipIf(!privileged)('unpackLayers: more layers than threads, unpacked at once, composed in order (needs root)', async () => {
    const { root, store } = await setup();
    const layers = [];
    for (let i = 0; i < 6; i++) layers.push({ tar: await rawTar([{ name: 'f', data: `layer ${i}` }, { name: `only${i}`, data: String(i) }]) });
    const desc = await storeImage(store, layers);
    const events: LayerEvent[] = [];
    const cache = new LayerCache(join(root, 'layers'));
    const res = await unpackLayers(store, desc.digest, cache, { onEvent: (e) => events.push(e) });
    expect(res.unpacked).toBe(6);
    expect(await Promise.all(res.layers.map((l) => readFile(join(l.dir, 'f'), 'utf8')))).toEqual(layers.map((_l, i) => `layer ${i}`));
    expect(events.filter((e) => e.type === 'layer-done').map((e) => e.index).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect((await readdir(cache.root)).filter((n) => n.startsWith('.'))).toEqual([]);
  });
});
