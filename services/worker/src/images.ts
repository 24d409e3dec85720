import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageConfig, ImageStore, LayerEvent } from '@skiff/image';
import {
  ensureMountPointsLayer,
  flattenLayers,
  isMountPoint,
  LayerCache,
  mountOverlay,
  mountsUnder,
  overlayMarksSupported,
  overlaySupported,
  unmount,
  unpackImage,
  unpackLayers,
} from '@skiff/image';
import type { Logger } from '@skiff/service-kit';
import { ImageMetrics } from './image-metrics.js';
import type { LayerTop } from './stem/fit.js';

export interface PreparedImage {
  digest: string;
  rootfs: string;
  config: ImageConfig;
}

export interface ImageCacheOptions {
  /** Disk budget for unpacked layers; least recently used images beyond it are evicted. Default 10 GiB. */
  maxBytes?: number;
  /** An image prepared less than this long ago counts as in use even without a lease. Default 60 s. */
  minIdleMs?: number;
  /** 'overlay' (layer cache + one read-only overlay mount per image), 'flat' (a plain tree per image), or 'auto'. */
  mode?: 'auto' | 'overlay' | 'flat';
  onEvent?: (digest: string, e: LayerEvent) => void;
  /** Where preparation timings and layer counts are recorded; default: the process's MeterProvider. */
  metrics?: ImageMetrics;
}

/** What image.json beside each rootfs records. */
interface ImageRecord {
  digest: string;
  mode: 'overlay' | 'flat';
  layers: string[];
}

function name(digest: string): string {
  return digest.replace(':', '-');
}

/**
 * Unpacked images on this node. Each layer is unpacked once into `<dir>/layers/<diffID>`;
 * an image is one read-only overlay mount of its layers at `<dir>/rootfs/<digest>/rootfs`,
 * shared by all its instances (each gets its own tmpfs /tmp from the runtime). Without
 * overlayfs (or root) the image is flattened into a plain tree at the same path instead.
 * Layers and trees survive restarts; a mount still there is reused (the worker unmounts what a
 * dead predecessor left before it starts: leftovers.ts). Disk use is kept
 * under `maxBytes` by evicting least recently used images that are not in use.
 */
export class ImageCache {
  private readonly ready = new Map<string, Promise<PreparedImage>>();
  private readonly leases = new Map<string, number>();
  private readonly lastUsed = new Map<string, number>();
  private readonly layers: LayerCache;
  private readonly opts: Required<Omit<ImageCacheOptions, 'onEvent' | 'metrics'>> & Pick<ImageCacheOptions, 'onEvent'>;
  private readonly metrics: ImageMetrics;
  private modeP: Promise<'overlay' | 'flat'> | undefined;

  constructor(
    private readonly store: ImageStore,
    private readonly dir: string,
    private readonly log: Logger,
    opts: ImageCacheOptions = {},
  ) {
    this.layers = new LayerCache(join(dir, 'layers'));
    this.opts = { maxBytes: opts.maxBytes ?? 10 * 1024 ** 3, minIdleMs: opts.minIdleMs ?? 60_000, mode: opts.mode ?? 'auto', onEvent: opts.onEvent };
    this.metrics = opts.metrics ?? new ImageMetrics();
  }

  /** The image's rootfs, unpacking and mounting it on first use. Concurrent calls share one preparation. */
  prepare(digest: string): Promise<PreparedImage> {
    this.lastUsed.set(digest, Date.now());
    let p = this.ready.get(digest);
    if (!p) {
      p = this.load(digest);
      this.ready.set(digest, p);
      // A failure is not cached: the next invocation tries again (the store may be fixed).
      p.catch(() => this.ready.delete(digest));
      // Eviction runs after a new image arrives, never blocking the invocation that needed it.
      p.then(() => this.evict().catch((err: unknown) => this.log.warn({ err }, 'image eviction failed')), () => undefined);
    }
    return p;
  }

  /** Like prepare, but the image cannot be evicted until `release()` is called. */
  async acquire(digest: string): Promise<PreparedImage & { release: () => void }> {
    this.leases.set(digest, (this.leases.get(digest) ?? 0) + 1);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      const n = (this.leases.get(digest) ?? 1) - 1;
      if (n > 0) this.leases.set(digest, n);
      else this.leases.delete(digest);
      this.lastUsed.set(digest, Date.now());
    };
    try {
      return { ...(await this.prepare(digest)), release };
    } catch (err) {
      release();
      throw err;
    }
  }

  private mode(): Promise<'overlay' | 'flat'> {
    this.modeP ??= (async () => {
      if (this.opts.mode !== 'auto') return this.opts.mode;
      return (await overlaySupported()) && overlayMarksSupported() ? 'overlay' : 'flat';
    })();
    return this.modeP;
  }

  private imageDir(digest: string): string {
    return join(this.dir, 'rootfs', name(digest));
  }

  private async load(digest: string): Promise<PreparedImage> {
    const loadStarted = performance.now();
    const seconds = (): number => (performance.now() - loadStarted) / 1000;
    const image = await this.store.image(digest);
    const base = this.imageDir(digest);
    const rootfs = join(base, 'rootfs');
    const mode = await this.mode();
    const record = await this.record(digest);
    if (record && (record.mode === 'flat' || (await isMountPoint(rootfs)))) {
      await this.touchRecord(digest);
      this.metrics.prepared(record.mode, true, seconds());
      return { digest, rootfs, config: image.config };
    }
    const started = performance.now();
    if (mode === 'flat' && !overlayMarksSupported()) {
      // Unprivileged: no overlay-format layers possible, so unpack the image directly.
      const res = await unpackImage(this.store, digest, rootfs);
      await this.writeRecord(digest, { digest, mode: 'flat', layers: [] });
      // No bytes read: the tree was already there (an earlier unpack ended before its record).
      const fresh = res.bytes > 0;
      if (fresh) this.metrics.imageUnpacked(res.layers, image.manifest.layers.reduce((n, l) => n + l.size, 0), res.bytes);
      this.metrics.prepared('flat', !fresh, seconds());
      this.log.info({ image: digest, mode, layers: res.layers, bytes: res.bytes, ms: Math.round(res.ms) }, 'image unpacked');
      return { digest, rootfs, config: image.config };
    }
    const recordLayer = this.metrics.layerListener();
    const layered = await unpackLayers(this.store, digest, this.layers, {
      onEvent: (e) => {
        recordLayer(e);
        this.opts.onEvent?.(digest, e);
      },
    });
    const top = await ensureMountPointsLayer(this.layers.root);
    const dirs = [...layered.layers.map((l) => l.dir), top];
    const layers = layered.layers.map((l) => l.diffId);
    let used: 'overlay' | 'flat' = mode;
    if (mode === 'overlay') {
      await mkdir(rootfs, { recursive: true });
      try {
        await mountOverlay(dirs, rootfs, this.layers.root);
      } catch (err) {
        this.log.warn({ image: digest, err: (err as Error).message }, 'overlay mount failed; flattening the image instead');
        used = 'flat';
      }
    }
    if (used === 'flat') {
      await flattenLayers([...layered.layers, { ...layered.layers[0]!, dir: top, whiteouts: [], opaques: [], implicitDirs: [] }], rootfs);
    }
    await this.writeRecord(digest, { digest, mode: used, layers });
    this.metrics.prepared(used, layered.unpacked === 0, seconds());
    this.log.info(
      { image: digest, mode: used, layers: layers.length, unpackedLayers: layered.unpacked, unpackMs: Math.round(layered.ms), ms: Math.round(performance.now() - started) },
      'image ready',
    );
    return { digest, rootfs, config: image.config };
  }

  private async record(digest: string): Promise<ImageRecord | undefined> {
    try {
      return JSON.parse(await readFile(join(this.imageDir(digest), 'image.json'), 'utf8')) as ImageRecord;
    } catch {
      return undefined;
    }
  }

  private async writeRecord(digest: string, rec: ImageRecord): Promise<void> {
    await mkdir(this.imageDir(digest), { recursive: true });
    await writeFile(join(this.imageDir(digest), 'image.json'), JSON.stringify(rec));
  }

  private async touchRecord(digest: string): Promise<void> {
    const now = new Date();
    await utimes(join(this.imageDir(digest), 'image.json'), now, now).catch(() => undefined);
    for (const l of (await this.record(digest))?.layers ?? []) await this.layers.touch(l);
  }

  /**
   * What an unpacked layer holds at its top and where it removes things: for deciding whether a
   * function's own layers only add under one directory (stem/fit.ts). Undefined when the layer
   * is not in the layer cache.
   */
  async layerTop(diffId: string): Promise<LayerTop | undefined> {
    const info = await this.layers.get(diffId);
    if (!info) return undefined;
    const entries = (await readdir(info.dir, { withFileTypes: true })).map((e) => ({ name: e.name, directory: e.isDirectory() }));
    return { diffId, entries, whiteouts: info.whiteouts, opaques: info.opaques };
  }

  /** Disk use of cached layers plus flat trees, as recorded when they were unpacked. */
  async usage(): Promise<{ bytes: number; images: string[]; layers: number }> {
    let bytes = 0;
    const ids = await this.layers.list();
    for (const id of ids) bytes += (await this.layers.get(id))?.diskBytes ?? 0;
    const images = await this.images();
    return { bytes, images, layers: ids.length };
  }

  private async images(): Promise<string[]> {
    const root = join(this.dir, 'rootfs');
    const names = await readdir(root).catch(() => [] as string[]);
    return names.filter((n) => n.startsWith('sha256-')).map((n) => n.replace('-', ':'));
  }

  private inUse(digest: string): boolean {
    if ((this.leases.get(digest) ?? 0) > 0) return true;
    return Date.now() - (this.lastUsed.get(digest) ?? 0) < this.opts.minIdleMs;
  }

  /**
   * Brings disk use under the budget (or under `targetBytes`): unmounts and forgets the
   * least recently used images not in use, then removes layers no remaining image needs.
   * Returns what was evicted.
   */
  async evict(targetBytes = this.opts.maxBytes): Promise<{ images: string[]; layers: string[] }> {
    const evicted = { images: [] as string[], layers: [] as string[] };
    let { bytes } = await this.usage();
    if (bytes <= targetBytes) return evicted;
    const candidates: Array<{ digest: string; used: number }> = [];
    for (const digest of await this.images()) {
      if (this.inUse(digest)) continue;
      const st = await stat(join(this.imageDir(digest), 'image.json')).catch(() => undefined);
      candidates.push({ digest, used: st?.mtimeMs ?? 0 });
    }
    candidates.sort((a, b) => a.used - b.used);
    for (const { digest } of candidates) {
      if (bytes <= targetBytes) break;
      await this.forget(digest);
      evicted.images.push(digest);
      const needed = new Set<string>();
      for (const d of await this.images()) for (const l of (await this.record(d))?.layers ?? []) needed.add(l);
      for (const id of await this.layers.list()) {
        if (needed.has(id)) continue;
        bytes -= (await this.layers.get(id))?.diskBytes ?? 0;
        await this.layers.remove(id);
        evicted.layers.push(id);
      }
    }
    if (evicted.images.length) this.log.info({ ...evicted, bytes, budget: targetBytes }, 'images evicted');
    return evicted;
  }

  private async forget(digest: string): Promise<void> {
    this.ready.delete(digest);
    this.lastUsed.delete(digest);
    const base = this.imageDir(digest);
    for (const m of await mountsUnder(base)) await unmount(m);
    await rm(base, { recursive: true, force: true });
  }

  /** Unmounts every image this cache mounted (layers and records stay for the next start). Call at shutdown, after the last container stopped. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.ready.values()]);
    this.ready.clear();
    for (const m of await mountsUnder(join(this.dir, 'rootfs'))) await unmount(m);
  }
}
