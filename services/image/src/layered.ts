import { toSkiffError } from './errors.js';
import { composeStack } from './fixups.js';
import type { LayerCache, LayerEvent, LayerInfo } from './layer-cache.js';
import { Budget, DEFAULT_LIMITS, type UnpackLimits } from './limits.js';
import type { ImageStore } from './store.js';
import type { ResolvedImage } from './types.js';

export interface LayeredImage {
  image: Omit<ResolvedImage, 'ref'> & { ref: string | undefined };
  /** Bottom layer first, with any fixups (fixups.ts) right above the layer they belong to. */
  layers: LayerInfo[];
  /** Layers unpacked by this call (the others were cached). */
  unpacked: number;
  ms: number;
}

/**
 * Makes sure every layer of the image is in the cache (each unpacked once, by diffID) and
 * that the stack is safe to compose. Limits count the layers unpacked by this call. The
 * returned stack may hold fixup entries besides the image's layers (fixups.ts); mount
 * or flatten all of them, in order.
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
  let unpacked = 0;
  // Layers are independent until composed, so they unpack at once (the layer threads bound
  // how many). A failure is reported once every layer has settled, the lowest layer's
  // first, so no temp tree is still being written when the caller hears of it.
  const settled = await Promise.allSettled(
    image.manifest.layers.map((desc, i) =>
      cache.ensure(store, desc, image.config.rootfs.diff_ids[i] as string, i, budget, (e) => {
        if (e.type === 'layer-done') unpacked += 1;
        opts.onEvent?.(e);
      }),
    ),
  );
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const unpackedLayers = settled.map((r) => (r as PromiseFulfilledResult<LayerInfo>).value);
  let layers: LayerInfo[];
  try {
    layers = await composeStack(cache, unpackedLayers);
  } catch (err) {
    throw toSkiffError(err, `image ${manifestDigest}`);
  }
  await Promise.all(layers.map((l) => cache.touch(l.diffId)));
  return { image, layers, unpacked, ms: performance.now() - started };
}
