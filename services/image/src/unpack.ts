import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { toSkiffError } from './errors.js';
import { lstatOrNull } from './fs-util.js';
import type { LayerJob } from './layer-job.js';
import { runLayerJob } from './layer-threads.js';
import { Budget, DEFAULT_LIMITS, type UnpackLimits } from './limits.js';
import type { ImageStore } from './store.js';

export interface UnpackResult {
  dir: string;
  layers: number;
  entries: number;
  /** Uncompressed tar bytes read. */
  bytes: number;
  ms: number;
  /** Device nodes and FIFOs skipped (see README). */
  dropped: number;
}

/** Directories the runtime mounts over; they must be real directories, never symlinks. */
export const MOUNT_POINTS: Array<[string, number]> = [['proc', 0o755], ['sys', 0o755], ['dev', 0o755], ['tmp', 0o1777]];

function errno(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (errno(err) === 'ENOENT') return false;
    throw err;
  }
}

/** Real directories at the mount points, replacing whatever the image put there. */
async function ensureMountPoints(root: string): Promise<void> {
  for (const [name, mode] of MOUNT_POINTS) {
    const path = join(root, name);
    const st = await lstatOrNull(path);
    if (st && !st.isDirectory()) await rm(path, { recursive: true, force: true });
    if (!st || !st.isDirectory()) await mkdir(path, { mode: 0o755 });
    if (name === 'tmp' || !st) await chmod(path, mode);
  }
}

export async function unpackImage(
  store: ImageStore,
  manifestDigest: string,
  dest: string,
  opts: { limits?: Partial<UnpackLimits> } = {},
): Promise<UnpackResult> {
  const started = performance.now();
  const limits: UnpackLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const image = await store.image(manifestDigest);
  const layers = image.manifest.layers;
  const existing = (): UnpackResult => ({ dir: dest, layers: layers.length, entries: 0, bytes: 0, dropped: 0, ms: performance.now() - started });
  // Already there: an earlier or concurrent unpack of this image finished. Never merge into it.
  if (await exists(dest)) return existing();

  await mkdir(dirname(dest), { recursive: true });
  const tmp = join(dirname(dest), `.${basename(dest)}.unpack-${randomBytes(6).toString('hex')}`);
  // 0700 while under construction, so nobody sees (or runs) a half-made tree.
  await mkdir(tmp, { mode: 0o700 });
  const budget = new Budget(limits);
  let entries = 0;
  let dropped = 0;
  try {
    // In order, each on a layer thread: a layer applies on top of the ones below it.
    for (const [i, layer] of layers.entries()) {
      const job: LayerJob = {
        blob: store.blobPath(layer.digest),
        desc: { digest: layer.digest, size: layer.size, mediaType: layer.mediaType },
        diffId: image.config.rootfs.diff_ids[i] as string,
        index: i,
        tree: tmp,
        overlay: false,
        budget: budget.share(),
      };
      const { counts } = await runLayerJob(job);
      entries += counts.entries;
      dropped += counts.dropped;
    }
    await ensureMountPoints(tmp);
    await chmod(tmp, 0o755);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw toSkiffError(err, `unpacking image ${manifestDigest}`);
  }
  try {
    await rename(tmp, dest);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    // rename(2) onto a non-empty directory fails: another unpack got there first.
    if (errno(err) === 'ENOTEMPTY' || errno(err) === 'EEXIST') {
      return { ...existing(), entries, dropped, bytes: budget.bytes };
    }
    throw toSkiffError(err, `moving unpacked image ${manifestDigest} into ${dest}`);
  }
  return { dir: dest, layers: layers.length, entries, bytes: budget.bytes, dropped, ms: performance.now() - started };
}
