/*
 * Builders for synthetic images, used by this package's tests and available to other
 * packages' tests. Unlike layer-writer, nothing here checks or sorts anything: tests need
 * to produce exactly the hostile layers the unpacker must refuse.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { commitImage, EPOCH_ISO } from './commit.js';
import { flattenLayers } from './flatten.js';
import { LayerCache } from './layer-cache.js';
import { unpackLayers } from './layered.js';
import type { UnpackLimits } from './limits.js';
import { unpackImage } from './unpack.js';
import { sha256 } from './digest.js';
import { MEDIA } from './media.js';
import { hostArchitecture } from './platform.js';
import { ImageStore } from './store.js';
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
export async function storeImage(store: ImageStore, layers: TestLayer[], ref = 'test:latest', run: ImageConfig['config'] = { Cmd: ['/bin/sh'] }): Promise<Descriptor> {
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
    config: run,
    rootfs: { type: 'layers', diff_ids: diffIds },
    created: EPOCH_ISO,
  };
  return commitImage(store, config, descs, ref);
}

/** The public unpack paths an attacker's image can reach: the flat unpacker and the layer cache + flatten (the CLI's and the worker's). */
export type UnpackPath = 'flat' | 'layered';

export interface AttackOptions {
  limits?: Partial<UnpackLimits>;
  run?: ImageConfig['config'];
}

export interface AttackContext {
  root: string;
  store: ImageStore;
  /** A file outside every tree that hostile layers aim at; must still read "original". */
  victim: string;
  /** What an unpack left behind: entries of out/ and temp directories in the layer cache. */
  leftovers(): Promise<string[]>;
}

export async function attackContext(): Promise<AttackContext> {
  const root = await mkdtemp(join(tmpdir(), 'skiff-attack-'));
  await mkdir(join(root, 'outside'));
  await mkdir(join(root, 'out'));
  const victim = join(root, 'outside', 'victim');
  await writeFile(victim, 'original');
  const store = await ImageStore.open(join(root, 'store'));
  const leftovers = async (): Promise<string[]> => {
    const out = (await readdir(join(root, 'out'))).map((n) => `out/${n}`);
    const layers = (await readdir(join(root, 'layers')).catch(() => [] as string[])).filter((n) => n.startsWith('.')).map((n) => `layers/${n}`);
    return [...out, ...layers];
  };
  return { root, store, victim, leftovers };
}

/**
 * Unpacks `layers` through `path` into `<root>/out/rootfs`, with the layer cache (layered
 * path) at `<root>/layers`. Security suites use it to run each hostile image both ways.
 */
export async function unpackVia(path: UnpackPath, store: ImageStore, root: string, layers: TestLayer[], opts: AttackOptions = {}): Promise<string> {
  const desc = await storeImage(store, layers, 'test:latest', opts.run);
  const dest = join(root, 'out', 'rootfs');
  const limits = opts.limits ? { limits: opts.limits } : {};
  if (path === 'flat') {
    await unpackImage(store, desc.digest, dest, limits);
  } else {
    const cache = new LayerCache(join(root, 'layers'));
    const { layers: infos } = await unpackLayers(store, desc.digest, cache, limits);
    await flattenLayers(infos, dest);
  }
  return dest;
}

/**
 * The names of a file's extended attributes (llistxattr: a symlink's own). Node has no xattr
 * call, so perl (installed by the bootstrap) makes it, with the syscall's number for this
 * machine from the system headers (syscall.ph).
 */
export function listXattrs(path: string): string[] {
  const script = 'require "syscall.ph"; my $b = "\\0" x 65536; my $n = syscall(&SYS_llistxattr, $ARGV[0], $b, length $b); die "llistxattr $ARGV[0]: $!\\n" if $n < 0; print substr($b, 0, $n)';
  return execFileSync('perl', ['-e', script, path], { encoding: 'latin1' }).split('\0').filter(Boolean);
}
