import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LayerApplier } from './apply-layer.js';
import { assertDigest } from './digest.js';
import { invalid, toSkiffError } from './errors.js';
import type { Budget } from './limits.js';
import type { ImageStore } from './store.js';
import { Tree } from './tree.js';
import type { Descriptor } from './types.js';
import { readLayer } from './unpack.js';

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
}

export type LayerEvent =
  | { type: 'layer-cached'; index: number; diffId: string }
  | { type: 'layer-start'; index: number; diffId: string; compressedSize: number }
  | { type: 'layer-progress'; index: number; diffId: string; bytes: number }
  | { type: 'layer-done'; index: number; diffId: string; entries: number; bytes: number; ms: number };

function errno(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code;
}

/**
 * Layers unpacked once each, in directories named by diffID: `<root>/sha256-<hex>/tree`
 * plus `layer.json`. A layer is built in a private temp directory and renamed into place
 * with its layer.json already inside, so a directory that exists is whole; two unpacks of
 * one layer (threads or processes) both succeed and the loser's copy is removed.
 */
export class LayerCache {
  private readonly inflight = new Map<string, Promise<LayerInfo>>();

  constructor(readonly root: string) {}

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
    const info = JSON.parse(raw.toString('utf8')) as Omit<LayerInfo, 'dir'>;
    return { ...info, diffId, dir: join(dir, 'tree') };
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
    const key = this.name(diffId);
    let p = this.inflight.get(key);
    if (!p) {
      p = this.load(store, desc, diffId, index, budget, onEvent).finally(() => this.inflight.delete(key));
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
    await mkdir(this.root, { recursive: true });
    const tmp = join(this.root, `.tmp-${randomBytes(6).toString('hex')}`);
    const treeDir = join(tmp, 'tree');
    await mkdir(tmp, { mode: 0o700 });
    await mkdir(treeDir, { mode: 0o755 });
    const applier = new LayerApplier(new Tree(treeDir), budget, { overlay: true });
    let bytes = 0;
    let lastReport = 0;
    const progress = (n: number): void => {
      bytes += n;
      if (onEvent && bytes - lastReport >= 4 * 1024 * 1024) {
        lastReport = bytes;
        onEvent({ type: 'layer-progress', index, diffId, bytes });
      }
    };
    try {
      const counts = await readLayer(store, applier, budget, desc, diffId, index, progress);
      const info: Omit<LayerInfo, 'dir' | 'diffId'> = {
        entries: counts.entries,
        dropped: counts.dropped,
        diskBytes: counts.fileBytes + counts.entries * 512,
        unpackMs: Math.round(performance.now() - started),
        ...applier.marks,
      };
      await writeFile(join(tmp, 'layer.json'), JSON.stringify(info));
      await chmod(tmp, 0o755);
      try {
        await rename(tmp, this.path(diffId));
      } catch (err) {
        // Another process finished the same layer first; theirs is as good as ours.
        if (errno(err) !== 'ENOTEMPTY' && errno(err) !== 'EEXIST') throw err;
        await rm(tmp, { recursive: true, force: true });
        const theirs = await this.get(diffId);
        if (!theirs) throw invalid(`layer ${diffId} vanished while being cached`);
        return theirs;
      }
      onEvent?.({ type: 'layer-done', index, diffId, entries: counts.entries, bytes, ms: info.unpackMs });
      return { ...info, diffId, dir: join(this.path(diffId), 'tree') };
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw toSkiffError(err, `unpacking layer ${index} ${diffId}`);
    }
  }
}
