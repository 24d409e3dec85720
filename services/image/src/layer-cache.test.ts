import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LayerCache } from './layer-cache.js';
import { unpackLayers } from './layered.js';
import { overlayMarksSupported } from './overlay-marks.js';
import { ImageStore } from './store.js';
import { rawTar, storeImage } from './testkit.js';

const roots: string[] = [];
afterAll(async () => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));

describe('LayerCache', () => {
  // Overlay-format layers (whiteout devices) need root.
  it.skipIf(!overlayMarksSupported())('gives a layer cached before whiteoutDirs was recorded the same whiteoutDirs, from its tree (needs root)', async () => {
    const root = await mkdtemp(join(tmpdir(), 'skiff-layer-cache-'));
    roots.push(root);
    const store = await ImageStore.open(join(root, 'store'));
    const tar = await rawTar([
      { name: 'only/deep/.wh.gone' }, // only/ and only/deep/ hold nothing but a whiteout
      { name: 'opaque/.wh..wh..opq' },
      { name: 'mixed/.wh.gone' },
      { name: 'mixed/kept', data: 'x' }, // a real entry: mixed/ is not whiteout-only
    ]);
    const { digest } = await storeImage(store, [{ tar }]);
    const cache = new LayerCache(join(root, 'layers'));
    const [layer] = (await unpackLayers(store, digest, cache)).layers;
    if (!layer) throw new Error('no layer');
    expect([...layer.whiteoutDirs].sort()).toEqual(['only', 'only/deep', 'opaque']);

    // What an older Skiff wrote: the same record without the field.
    const file = join(cache.path(layer.diffId), 'layer.json');
    const { whiteoutDirs, ...older } = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    expect(whiteoutDirs).toBeDefined();
    await writeFile(file, JSON.stringify(older));

    const upgraded = await new LayerCache(join(root, 'layers')).get(layer.diffId);
    expect([...(upgraded?.whiteoutDirs ?? [])].sort()).toEqual(['only', 'only/deep', 'opaque']);
    // Recorded once, so the tree is not walked again.
    expect((JSON.parse(await readFile(file, 'utf8')) as { whiteoutDirs?: string[] }).whiteoutDirs?.sort()).toEqual(['only', 'only/deep', 'opaque']);
  });
});
