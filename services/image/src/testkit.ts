/*
 * Builders for synthetic images, used by this package's tests and available to other
 * packages' tests. Unlike layer-writer, nothing here checks or sorts anything: tests need
 * to produce exactly the hostile layers the unpacker must refuse.
 */
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { commitImage, EPOCH_ISO } from './commit.js';
import { sha256 } from './digest.js';
import { MEDIA } from './media.js';
import { hostArchitecture } from './platform.js';
import type { ImageStore } from './store.js';
import type { Descriptor, ImageConfig } from './types.js';

export interface RawEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  data?: string | Buffer;
  pax?: Record<string, string>;
  mtime?: Date;
}

/** A tar with exactly these entries, in this order. */
export async function rawTar(entries: RawEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const data = e.data === undefined ? undefined : Buffer.from(e.data);
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? new Date(0),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      ...(e.pax ? { pax: e.pax } : {}),
      ...(type === 'file' ? { size: data?.length ?? 0 } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (type === 'file') pack.entry(header, data ?? Buffer.alloc(0), cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** Overwrites a numeric field of the header block at `offset` with raw bytes and fixes the checksum. */
export function patchHeader(tarBytes: Buffer, offset: number, field: 'uid' | 'gid' | 'mode', value: Buffer): Buffer {
  const at = { mode: 100, uid: 108, gid: 116 }[field];
  const out = Buffer.from(tarBytes);
  const block = out.subarray(offset, offset + 512);
  value.copy(block, at, 0, 8);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return out;
}

export interface TestLayer {
  tar: Buffer;
  /** Default true. */
  gzip?: boolean;
  /** Bytes to store instead of the (gzipped) tar, e.g. truncated or with garbage appended. */
  blob?: Buffer;
  /** diffID to list in the config instead of the tar's real one. */
  diffId?: string;
  /** Fields to override in the manifest's layer descriptor. */
  descriptor?: Partial<Descriptor>;
}

/** Stores layers, config and manifest, tags `ref` and returns the manifest descriptor. */
export async function storeImage(store: ImageStore, layers: TestLayer[], ref = 'test:latest'): Promise<Descriptor> {
  const descs: Descriptor[] = [];
  const diffIds: string[] = [];
  for (const l of layers) {
    const gzip = l.gzip ?? true;
    const blob = l.blob ?? (gzip ? gzipSync(l.tar) : l.tar);
    const desc = await store.putBlob(blob, gzip ? MEDIA.ociLayerGzip : MEDIA.ociLayerTar);
    descs.push({ ...desc, ...l.descriptor });
    diffIds.push(l.diffId ?? sha256(l.tar));
  }
  const config: ImageConfig = {
    architecture: hostArchitecture(),
    os: 'linux',
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    created: EPOCH_ISO,
  };
  return commitImage(store, config, descs, ref);
}
