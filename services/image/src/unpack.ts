import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { LayerApplier, type Header, type LayerCounts } from './apply-layer.js';
import { DigestVerifier } from './digest.js';
import { invalid, toSkiffError } from './errors.js';
import { Budget, DEFAULT_LIMITS, type UnpackLimits } from './limits.js';
import { layerCompression } from './media.js';
import type { ImageStore } from './store.js';
import { TarFrame } from './tar-frame.js';
import { Tree } from './tree.js';
import type { Descriptor } from './types.js';

/** Bigger output chunks than zlib's 16 KiB: fewer trips through the stream stages and fewer writes. */
const GUNZIP_CHUNK = 256 * 1024;

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

/**
 * One layer, streamed: blob → compressed digest/size check → gunzip → diffID check (and
 * the byte budget) → tar framing → tar parser → applier. The checks fire at the end of the
 * stream, after the entries were written, which is why callers unpack into a temp tree.
 */
export async function readLayer(store: ImageStore, applier: LayerApplier, budget: Budget, desc: Descriptor, diffId: string, i: number, onBytes?: (n: number) => void): Promise<LayerCounts> {
  const compression = layerCompression(desc.mediaType);
  if (!compression) throw invalid(`layer ${i} ${desc.digest} has unsupported media type ${desc.mediaType}`);
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    // A parse error destroys the entry stream, maybe before the applier starts reading it;
    // the error reaches us through the pipeline, so an unheard 'error' must not crash.
    stream.on('error', () => undefined);
    applier.entry(header as Header, stream as AsyncIterable<Buffer>).then(() => next(), next);
  });
  const diff = new DigestVerifier({
    digest: diffId,
    label: `layer ${i} diffID`,
    onBytes: (n) => {
      budget.addBytes(n);
      onBytes?.(n);
    },
  });
  const frame = new TarFrame(`layer ${i} ${desc.digest}`);
  const blob = store.blobStream(desc, `layer ${i}`);
  try {
    if (compression === 'gzip') await pipeline(blob, createGunzip({ chunkSize: GUNZIP_CHUNK }), diff, frame, extract);
    else await pipeline(blob, diff, frame, extract);
  } catch (err) {
    // Do not let the caller delete the tree while an entry is still being written.
    await applier.settled();
    throw toSkiffError(err, `layer ${i} ${desc.digest}`);
  }
  await applier.finish();
  return applier.counts;
}

export async function ensureMountPoints(tree: Tree): Promise<void> {
  for (const [name, mode] of MOUNT_POINTS) {
    const st = await tree.lstat([name]);
    if (st && !st.isDirectory()) await tree.remove([name]);
    if (!st || !st.isDirectory()) await mkdir(tree.abs([name]), { mode: 0o755 });
    if (name === 'tmp' || !st) await chmod(tree.abs([name]), mode);
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
  const tree = new Tree(tmp);
  const budget = new Budget(limits);
  let entries = 0;
  let dropped = 0;
  try {
    for (const [i, layer] of layers.entries()) {
      const counts = await readLayer(store, new LayerApplier(tree, budget), budget, layer, image.config.rootfs.diff_ids[i] as string, i);
      entries += counts.entries;
      dropped += counts.dropped;
    }
    await ensureMountPoints(tree);
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
