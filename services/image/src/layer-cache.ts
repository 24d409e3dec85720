import { randomBytes } from 'node:crypto';
import { lstatSync, readdirSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertDigest } from './digest.js';
import { invalid, toSkiffError } from './errors.js';
import { runLayerJob, warmLayerThreads } from './layer-threads.js';
import type { Budget } from './limits.js';
import type { ImageStore } from './store.js';
import type { Descriptor } from './types.js';

/** What is known about one unpacked layer; stored as layer.json beside its tree. */
export interface LayerInfo {
  diffId: string;
  /** The layer's tree in overlayfs format (a lowerdir). */
  dir: string;
  entries: number;
  dropped: number;
  /** Bytes of file data on disk (plus a block per entry for metadata). */
  diskBytes: number;
  unpackMs: number;
  /** '/'-joined paths of whiteouts, opaque directories and directories made only as parents. */
  whiteouts: string[];
  opaques: string[];
  implicitDirs: string[];
  /** Implicit directories holding only whiteouts (see OverlayMarks). */
  whiteoutDirs: string[];
}

/** What a builder of a cache entry reports; the cache adds diffId and dir. */
export type LayerRecord = Omit<LayerInfo, 'dir' | 'diffId'>;

export type LayerEvent =
  | { type: 'layer-cached'; index: number; diffId: string }
  | { type: 'layer-start'; index: number; diffId: string; compressedSize: number }
  | { type: 'layer-progress'; index: number; diffId: string; bytes: number }
  | { type: 'layer-done'; index: number; diffId: string; entries: number; bytes: number; ms: number };

function errno(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code;
}

/**
 * True when nothing but whiteouts (0/0 character devices) and directories the layer made
 * only as parents lie below `rel`: what the applier records as a whiteout-only directory.
 */
function holdsOnlyWhiteouts(tree: string, rel: string, implicit: Set<string>): boolean {
  for (const entry of readdirSync(join(tree, rel), { withFileTypes: true })) {
    const path = `${rel}/${entry.name}`;
    if (entry.isCharacterDevice() && lstatSync(join(tree, path)).rdev === 0) continue;
    if (entry.isDirectory() && implicit.has(path) && holdsOnlyWhiteouts(tree, path, implicit)) continue;
    return false;
  }
  return true;
}

/** Layers cached before `whiteoutDirs` was recorded get it from their tree, once. */
function whiteoutDirsOf(tree: string, implicitDirs: string[]): string[] {
  const implicit = new Set(implicitDirs);
  return implicitDirs.filter((d) => holdsOnlyWhiteouts(tree, d, implicit));
}

/**
 * Layers unpacked once each, in directories named by diffID: `<root>/sha256-<hex>/tree`
 * plus `layer.json`. A layer is built in a private temp directory and renamed into place
 * with its layer.json already inside, so a directory that exists is whole; two unpacks of
 * one layer (threads or processes) both succeed and the loser's copy is removed.
 */
export class LayerCache {
  private readonly inflight = new Map<string, Promise<LayerInfo>>();

  constructor(readonly root: string) {
    // A cache is made when a process starts serving images; the thread is ready by the first layer.
    warmLayerThreads();
  }

  /** Directory name of a layer: the diffID with ':' (a separator in overlay options) replaced. */
  name(diffId: string): string {
    return assertDigest(diffId, 'diffID').replace(':', '-');
  }

  path(diffId: string): string {
    return join(this.root, this.name(diffId));
  }

  async get(diffId: string): Promise<LayerInfo | undefined> {
    const dir = this.path(diffId);
    let raw: Buffer;
    try {
      raw = await readFile(join(dir, 'layer.json'));
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw err;
    }
    const info = JSON.parse(raw.toString('utf8')) as Omit<LayerInfo, 'dir' | 'whiteoutDirs'> & { whiteoutDirs?: string[] };
    const tree = join(dir, 'tree');
    if (!info.whiteoutDirs) {
      // Written whole to a temp file and renamed, so a reader never sees half a record.
      const upgraded = { ...info, whiteoutDirs: whiteoutDirsOf(tree, info.implicitDirs) };
      const tmp = join(dir, `.layer.json-${randomBytes(6).toString('hex')}`);
      await writeFile(tmp, JSON.stringify(upgraded));
      await rename(tmp, join(dir, 'layer.json'));
      return { ...upgraded, diffId, dir: tree };
    }
    return { ...info, whiteoutDirs: info.whiteoutDirs, diffId, dir: tree };
  }

  /** Marks the layer used now (the mtime of layer.json), for eviction by least recent use. */
  async touch(diffId: string): Promise<void> {
    const now = new Date();
    await utimes(join(this.path(diffId), 'layer.json'), now, now).catch(() => undefined);
  }

  async list(): Promise<string[]> {
    await mkdir(this.root, { recursive: true });
    return (await readdir(this.root)).filter((n) => n.startsWith('sha256-')).map((n) => n.replace('-', ':'));
  }

  async remove(diffId: string): Promise<void> {
    // Renamed aside first so no reader ever sees a half-deleted layer under its real name.
    const aside = join(this.root, `.rm-${randomBytes(6).toString('hex')}`);
    try {
      await rename(this.path(diffId), aside);
    } catch (err) {
      if (errno(err) === 'ENOENT') return;
      throw err;
    }
    await rm(aside, { recursive: true, force: true });
  }

  /** The layer's info, unpacking it first if it is not cached yet. */
  ensure(store: ImageStore, desc: Descriptor, diffId: string, index: number, budget: Budget, onEvent?: (e: LayerEvent) => void): Promise<LayerInfo> {
    return this.once(diffId, () => this.load(store, desc, diffId, index, budget, onEvent));
  }

  /**
   * An entry that is not a layer of any image but derived from several (see fixups.ts),
   * built by `build` into the given tree directory unless it is cached already.
   */
  ensureDerived(id: string, build: (tree: string) => Promise<LayerRecord>): Promise<LayerInfo> {
    return this.once(id, async () => (await this.get(id)) ?? (await this.publish(id, build)).info);
  }

  /** One build per entry at a time in this process (other processes are handled by publish). */
  private once(id: string, load: () => Promise<LayerInfo>): Promise<LayerInfo> {
    const key = this.name(id);
    let p = this.inflight.get(key);
    if (!p) {
      p = load().finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async load(store: ImageStore, desc: Descriptor, diffId: string, index: number, budget: Budget, onEvent?: (e: LayerEvent) => void): Promise<LayerInfo> {
    const cached = await this.get(diffId);
    if (cached) {
      onEvent?.({ type: 'layer-cached', index, diffId });
      return cached;
    }
    const started = performance.now();
    onEvent?.({ type: 'layer-start', index, diffId, compressedSize: desc.size });
    let lastReport = 0;
    const progress = (bytes: number): void => {
      if (onEvent && bytes - lastReport >= 4 * 1024 * 1024) {
        lastReport = bytes;
        onEvent({ type: 'layer-progress', index, diffId, bytes });
      }
    };
    let bytes = 0;
    const { info, ours } = await this.publish(diffId, async (tree) => {
      // Resolves only after both digests matched and the thread stopped writing to the tree.
      const job = { blob: store.blobPath(desc.digest), desc: { digest: desc.digest, size: desc.size, mediaType: desc.mediaType }, diffId, index, tree, overlay: true, budget: budget.share() };
      const result = await runLayerJob(job, progress);
      bytes = result.bytes;
      const { counts, marks } = result;
      return { entries: counts.entries, dropped: counts.dropped, diskBytes: counts.fileBytes + counts.entries * 512, unpackMs: Math.round(performance.now() - started), ...marks };
    }).catch((err: unknown) => {
      throw toSkiffError(err, `unpacking layer ${index} ${diffId}`);
    });
    if (ours) onEvent?.({ type: 'layer-done', index, diffId, entries: info.entries, bytes, ms: info.unpackMs });
    return info;
  }

  /**
   * Builds an entry in a private temp directory and renames it into place with its layer.json
   * already inside, so a directory that exists is whole. If another process finished the same
   * entry first, theirs is kept (it is as good as ours) and `ours` is false. A failed build
   * leaves nothing behind.
   */
  private async publish(id: string, build: (tree: string) => Promise<LayerRecord>): Promise<{ info: LayerInfo; ours: boolean }> {
    await mkdir(this.root, { recursive: true });
    const tmp = join(this.root, `.tmp-${randomBytes(6).toString('hex')}`);
    const treeDir = join(tmp, 'tree');
    await mkdir(tmp, { mode: 0o700 });
    try {
      await mkdir(treeDir, { mode: 0o755 });
      const record = await build(treeDir);
      await writeFile(join(tmp, 'layer.json'), JSON.stringify(record));
      await chmod(tmp, 0o755);
      try {
        await rename(tmp, this.path(id));
      } catch (err) {
        if (errno(err) !== 'ENOTEMPTY' && errno(err) !== 'EEXIST') throw err;
        await rm(tmp, { recursive: true, force: true });
        const theirs = await this.get(id);
        if (!theirs) throw invalid(`layer ${id} vanished while being cached`);
        return { info: theirs, ours: false };
      }
      return { info: { ...record, diffId: id, dir: join(this.path(id), 'tree') }, ours: true };
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
  }
}
