import { checkLayerStack } from './compose.js';
import { toSkiffError } from './errors.js';
import type { LayerCache, LayerEvent, LayerInfo } from './layer-cache.js';
import { Budget, DEFAULT_LIMITS, type UnpackLimits } from './limits.js';
import type { ImageStore } from './store.js';
import type { ResolvedImage } from './types.js';

export interface LayeredImage {
  image: Omit<ResolvedImage, 'ref'> & { ref: string | undefined };
  /** Bottom layer first. */
  layers: LayerInfo[];
  /** Layers unpacked by this call (the others were cached). */
  unpacked: number;
  ms: number;
}

/**
 * Makes sure every layer of the image is in the cache (each unpacked once, by diffID) and
 * that the stack is safe to compose. Limits count the layers unpacked by this call.
 */
export async function unpackLayers(
  store: ImageStore,
  manifestDigest: string,
  cache: LayerCache,
  opts: { limits?: Partial<UnpackLimits>; onEvent?: (e: LayerEvent) => void } = {},
): Promise<LayeredImage> {
  const started = performance.now();
  const image = await store.image(manifestDigest);
  const budget = new Budget({ ...DEFAULT_LIMITS, ...opts.limits });
  const layers: LayerInfo[] = [];
  let unpacked = 0;
  for (const [i, desc] of image.manifest.layers.entries()) {
    const diffId = image.config.rootfs.diff_ids[i] as string;
    const info = await cache.ensure(store, desc, diffId, i, budget, (e) => {
      if (e.type === 'layer-done') unpacked += 1;
      opts.onEvent?.(e);
    });
    layers.push(info);
  }
  try {
    await checkLayerStack(layers);
  } catch (err) {
    throw toSkiffError(err, `image ${manifestDigest}`);
  }
  await Promise.all(layers.map((l) => cache.touch(l.diffId)));
  return { image, layers, unpacked, ms: performance.now() - started };
}
