export type { Descriptor, ImageManifest, ImageConfig, ImageIndex, ResolvedImage } from './types.js';
export { MEDIA, REF_ANNOTATION } from './media.js';
export { ImageStore } from './store.js';
export { buildBusyboxBase } from './busybox.js';
export { packFunction, type PackOptions } from './pack.js';
export { unpackImage, type UnpackResult } from './unpack.js';
export { DEFAULT_LIMITS, type UnpackLimits } from './limits.js';
