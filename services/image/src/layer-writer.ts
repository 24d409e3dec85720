import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { sha256 } from './digest.js';
import { MEDIA } from './media.js';
import type { ImageStore } from './store.js';
import type { Descriptor } from './types.js';

export type LayerEntry =
  | { type: 'directory'; name: string; mode: number }
  | { type: 'file'; name: string; mode: number; data: Buffer }
  | { type: 'symlink'; name: string; target: string };

const EPOCH = new Date(0);

/** Sorted by name in byte order: parents sort before their children, and the output never depends on readdir order. */
function byName(a: LayerEntry, b: LayerEntry): number {
  return Buffer.compare(Buffer.from(a.name), Buffer.from(b.name));
}

/** A tar with fixed owner (0:0), mtime 0 and sorted entries, so the same inputs give the same bytes. */
export async function deterministicTar(entries: LayerEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const e of [...entries].sort(byName)) {
    const base = { name: e.name, uid: 0, gid: 0, uname: '', gname: '', mtime: EPOCH };
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (e.type === 'file') pack.entry({ ...base, type: 'file', mode: e.mode, size: e.data.length }, e.data, done);
      else if (e.type === 'directory') pack.entry({ ...base, type: 'directory', mode: e.mode }, done);
      else pack.entry({ ...base, type: 'symlink', mode: 0o777, linkname: e.target }, done);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** Stores a layer (gzip, fixed header so it is reproducible) and returns its descriptor and diffID. */
export async function putLayer(store: ImageStore, entries: LayerEntry[]): Promise<{ layer: Descriptor; diffId: string }> {
  const tarBytes = await deterministicTar(entries);
  const layer = await store.putBlob(gzipSync(tarBytes), MEDIA.ociLayerGzip);
  return { layer, diffId: sha256(tarBytes) };
}
