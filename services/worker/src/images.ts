import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageConfig, ImageStore } from '@skiff/image';
import { unpackImage } from '@skiff/image';
import type { Logger } from '@skiff/contracts';

export interface PreparedImage {
  digest: string;
  rootfs: string;
  config: ImageConfig;
}

/**
 * Unpacked images on this node, one read-only tree per manifest digest. Unpacking is done
 * once: concurrent requests for the same image share one promise, and trees from earlier
 * runs are reused (the unpacker renames a finished tree into place, so one that exists is whole).
 */
export class ImageCache {
  private readonly ready = new Map<string, Promise<PreparedImage>>();

  constructor(
    private readonly store: ImageStore,
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  prepare(digest: string): Promise<PreparedImage> {
    let p = this.ready.get(digest);
    if (!p) {
      p = this.load(digest);
      this.ready.set(digest, p);
      // A failure is not cached: the next invocation tries again (the store may be fixed).
      p.catch(() => this.ready.delete(digest));
    }
    return p;
  }

  private async load(digest: string): Promise<PreparedImage> {
    const image = await this.store.image(digest);
    const rootfs = join(this.dir, digest.replace(':', '-'), 'rootfs');
    if (!existsSync(rootfs)) {
      const result = await unpackImage(this.store, digest, rootfs);
      this.log.info({ image: digest, layers: result.layers, bytes: result.bytes, ms: result.ms }, 'image unpacked');
    }
    return { digest, rootfs, config: image.config };
  }
}
