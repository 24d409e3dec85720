import { closeSync, openSync, readSync } from 'node:fs';
import { LayerApplier, type LayerCounts, type OverlayMarks } from './apply-layer.js';
import { DigestCheck } from './digest.js';
import { invalid, notFound, toSkiffError } from './errors.js';
import { Inflater } from './inflate.js';
import { Budget, type SharedBudget } from './limits.js';
import { layerCompression } from './media.js';
import { TarReader } from './tar-reader.js';
import { Tree } from './tree.js';
import type { Descriptor } from './types.js';

/** Bytes per blob read and per piece of inflated output (measured: bigger gains nothing). */
const CHUNK = 256 * 1024;

/** One layer to apply to a directory; plain data, so it can be posted to a layer thread. */
export interface LayerJob {
  /** The blob's path in the store; its bytes are checked against `desc` as they are read. */
  blob: string;
  desc: Pick<Descriptor, 'digest' | 'size' | 'mediaType'>;
  diffId: string;
  index: number;
  /** The directory the entries go to: a private temp tree the caller removes on failure. */
  tree: string;
  /** Layer cache format (whiteouts kept as marks for overlayfs) rather than applied to a flat tree. */
  overlay: boolean;
  budget: SharedBudget;
}

export interface LayerResult {
  counts: LayerCounts;
  marks: OverlayMarks;
  /** Uncompressed tar bytes read. */
  bytes: number;
}

/**
 * The read buffer, kept for the thread's next layer: memory touched before costs no page
 * faults, and a layer thread applies one layer at a time.
 */
let readBuffer: Buffer | undefined;

function openBlob(job: LayerJob, label: string): number {
  try {
    return openSync(job.blob, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`${label} ${job.desc.digest} is not in the store`, err);
    throw err;
  }
}

/**
 * One layer, in one synchronous pass on the calling thread (a layer thread, so no event
 * loop waits): read a block of the blob → count and hash it (digest, size) → gunzip into
 * a reused buffer → count and hash that (diffID, byte budget) → tar reader → applier,
 * which writes file data straight from that buffer. Nothing is copied and only two buffers
 * are ever used. The digest checks fire at the end, after the entries were written, which
 * is why callers unpack into a temp tree and publish it only when this resolves.
 */
export async function applyLayerJob(job: LayerJob, onBytes?: (n: number) => void): Promise<LayerResult> {
  const label = `layer ${job.index}`;
  const compression = layerCompression(job.desc.mediaType);
  if (!compression) throw invalid(`${label} ${job.desc.digest} has unsupported media type ${job.desc.mediaType}`);
  const budget = Budget.attach(job.budget);
  const applier = new LayerApplier(new Tree(job.tree), budget, { overlay: job.overlay });
  const tar = new TarReader(`${label} ${job.desc.digest}`, applier);
  let bytes = 0;
  const blob = new DigestCheck({ digest: job.desc.digest, size: job.desc.size, label });
  const diff = new DigestCheck({
    digest: job.diffId,
    label: `${label} diffID`,
    onBytes: (n) => {
      budget.addBytes(n);
      bytes += n;
      onBytes?.(n);
    },
  });
  /** Tar bytes, inflated or as stored: checked against the diffID and applied. */
  const take = (out: Buffer): void => {
    diff.update(out);
    tar.push(out);
  };
  const buf = (readBuffer ??= Buffer.allocUnsafe(CHUNK));
  const fd = openBlob(job, label);
  let inflater: Inflater | undefined;
  try {
    if (compression === 'gzip') inflater = new Inflater(`${label} ${job.desc.digest}`, CHUNK, take);
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      const block = buf.subarray(0, n);
      blob.update(block);
      if (inflater) inflater.write(block);
      else take(block);
    }
    blob.check();
    inflater?.end();
    diff.check();
    tar.end();
  } catch (err) {
    applier.abandon();
    throw toSkiffError(err, `${label} ${job.desc.digest}`);
  } finally {
    inflater?.close();
    closeSync(fd);
  }
  await applier.finish();
  return { counts: applier.counts, marks: applier.marks, bytes };
}
