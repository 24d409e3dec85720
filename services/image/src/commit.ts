import { MEDIA } from './media.js';
import type { ImageStore } from './store.js';
import type { Descriptor, ImageConfig, ImageManifest } from './types.js';

/** The timestamp written into configs and history: fixed, so builds are reproducible. */
export const EPOCH_ISO = '1970-01-01T00:00:00Z';

/** Stores config and manifest, points `ref` at the manifest and returns the manifest's descriptor. */
export async function commitImage(store: ImageStore, config: ImageConfig, layers: Descriptor[], ref: string): Promise<Descriptor> {
  const configDesc = await store.putBlob(Buffer.from(JSON.stringify(config)), MEDIA.ociConfig);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    config: configDesc,
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const manifestDesc = await store.putBlob(Buffer.from(JSON.stringify(manifest)), MEDIA.ociManifest);
  await store.tag(ref, manifestDesc);
  return manifestDesc;
}
