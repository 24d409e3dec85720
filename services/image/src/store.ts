import { randomBytes } from 'node:crypto';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { SkiffError } from '@skiff/contracts';
import { writeFileAtomic } from './atomic.js';
import { assertDigest, DigestVerifier, sha256 } from './digest.js';
import { checkConfig, checkIndex, checkManifest, parseJson } from './documents.js';
import { invalid, notFound } from './errors.js';
import { isIndexType, isManifestType, MEDIA, REF_ANNOTATION } from './media.js';
import { withLockFile } from './lockfile.js';
import { hostArchitecture } from './platform.js';
import { checkedRef, normalizeRef } from './refs.js';
import type { Descriptor, ImageIndex, ResolvedImage } from './types.js';

const LAYOUT = JSON.stringify({ imageLayoutVersion: '1.0.0' });
/** JSON documents are read whole; a cap keeps a hostile "manifest" from eating memory. */
const MAX_JSON_BYTES = 8 * 1024 * 1024;

function emptyIndex(): ImageIndex {
  return { schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: [] };
}

function isMissing(err: unknown): boolean {
  return (err as { code?: string } | undefined)?.code === 'ENOENT';
}

/** An OCI image layout directory: oci-layout, index.json and content-addressed blobs. */
export class ImageStore {
  /** Serialises index.json read-modify-write within this process (the lock file does it across processes). */
  private indexLock: Promise<unknown> = Promise.resolve();

  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<ImageStore> {
    const store = new ImageStore(dir);
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    await store.ensureFile('oci-layout', LAYOUT);
    await store.ensureFile('index.json', JSON.stringify(emptyIndex()));
    const layout = parseJson(await readFile(join(dir, 'oci-layout')), `${dir}/oci-layout`) as { imageLayoutVersion?: unknown };
    if (layout?.imageLayoutVersion !== '1.0.0') {
      throw invalid(`${dir}/oci-layout has imageLayoutVersion ${String(layout?.imageLayoutVersion)}, expected 1.0.0`);
    }
    return store;
  }

  private async ensureFile(name: string, content: string): Promise<void> {
    try {
      await stat(join(this.dir, name));
    } catch (err) {
      if (!isMissing(err)) throw err;
      await writeFileAtomic(join(this.dir, name), content);
    }
  }

  /** Path of a blob; only ever called with a validated digest. */
  blobPath(digest: string): string {
    return join(this.dir, 'blobs', 'sha256', assertDigest(digest).slice('sha256:'.length));
  }

  async resolve(ref: string): Promise<ResolvedImage> {
    const normalized = normalizeRef(ref);
    const index = await this.readIndex();
    // Later entries win, matching what tag() would have left. Layouts written by other tools
    // (umoci, skopeo, buildah) annotate the bare tag ("v1", "latest"), so the ref exactly as
    // given is looked up first, then its normalised "name:latest" form that Skiff stores.
    const byName = (name: string) => [...index.manifests].reverse().find((d) => d.annotations?.[REF_ANNOTATION] === name);
    const exact = byName(ref);
    const want = exact ? ref : normalized;
    const entry = exact ?? byName(normalized);
    if (!entry) throw notFound(`image ${want} is not in the store`);
    if (isIndexType(entry.mediaType)) {
      const child = checkIndex(parseJson(await this.readBlob(entry.digest, entry.size), `index ${entry.digest}`), `index ${entry.digest}`);
      const arch = hostArchitecture();
      const pick = child.manifests.find(
        (d) => isManifestType(d.mediaType) && d.platform?.os === 'linux' && d.platform.architecture === arch,
      );
      if (!pick) throw notFound(`image ${want} has no linux/${arch} manifest`);
      return this.load(pick, want);
    }
    if (!isManifestType(entry.mediaType)) throw invalid(`image ${want} points at unsupported media type ${entry.mediaType}`);
    return this.load(entry, want);
  }

  /** `ref` is the tag pointing at this manifest in index.json, if any. */
  async image(manifestDigest: string): Promise<Omit<ResolvedImage, 'ref'> & { ref: string | undefined }> {
    assertDigest(manifestDigest, 'manifest digest');
    const index = await this.readIndex();
    const entry = index.manifests.find((d) => d.digest === manifestDigest);
    const ref: string | undefined = entry?.annotations?.[REF_ANNOTATION];
    // Outside index.json (a platform manifest of an index) we know no size to check.
    const size = entry && isManifestType(entry.mediaType) ? entry.size : undefined;
    const resolved = await this.load({ digest: manifestDigest, size }, ref ?? '');
    return { ...resolved, ref };
  }

  private async load(desc: { digest: string; size?: number | undefined }, ref: string): Promise<ResolvedImage> {
    const bytes = await this.readJsonBlob(desc.digest, desc.size);
    const manifest = checkManifest(parseJson(bytes, `manifest ${desc.digest}`), desc.digest);
    let configBytes: Buffer;
    try {
      configBytes = await this.readJsonBlob(manifest.config.digest, manifest.config.size);
    } catch (err) {
      if (err instanceof SkiffError && err.code === 'SKIFF_IMAGE_NOT_FOUND') {
        throw invalid(`manifest ${desc.digest} names config ${manifest.config.digest}, which is missing`, err);
      }
      throw err;
    }
    const config = checkConfig(parseJson(configBytes, `config ${manifest.config.digest}`), manifest.config.digest, manifest.layers.length);
    return { ref, digest: desc.digest, size: bytes.length, manifest, config };
  }

  private async readJsonBlob(digest: string, size: number | undefined): Promise<Buffer> {
    const st = await this.statBlob(digest);
    if (st > MAX_JSON_BYTES) throw invalid(`blob ${digest} is ${st} bytes, too large for a JSON document`);
    return this.readBlob(digest, size);
  }

  private async statBlob(digest: string): Promise<number> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch (err) {
      if (isMissing(err)) throw notFound(`blob ${digest} is not in the store`, err);
      throw err;
    }
  }

  async readBlob(digest: string, size?: number): Promise<Buffer> {
    const actualSize = await this.statBlob(digest);
    if (size !== undefined && actualSize !== size) {
      throw invalid(`blob ${digest} is ${actualSize} bytes, expected ${size}`);
    }
    const data = await readFile(this.blobPath(digest));
    if (size !== undefined && data.length !== size) throw invalid(`blob ${digest} is ${data.length} bytes, expected ${size}`);
    const actual = sha256(data);
    if (actual !== digest) throw invalid(`blob ${digest} hashes to ${actual}`);
    return data;
  }

  /** Invalid digests throw here; missing or mismatching content errors the stream. */
  blobStream(desc: Pick<Descriptor, 'digest' | 'size'>, label = 'blob'): Readable {
    const path = this.blobPath(desc.digest);
    const verifier = new DigestVerifier({ digest: desc.digest, size: desc.size, label });
    const source = createReadStream(path, { highWaterMark: 256 * 1024 });
    source.on('error', (err) => {
      verifier.destroy(isMissing(err) ? notFound(`${label} ${desc.digest} is not in the store`, err) : err);
    });
    return source.pipe(verifier);
  }

  async putBlob(data: Uint8Array, mediaType: string): Promise<Descriptor> {
    const digest = sha256(data);
    const path = this.blobPath(digest);
    const existing = await stat(path).catch((err: unknown) => {
      if (isMissing(err)) return undefined;
      throw err;
    });
    // Same digest and size: the content is already there (readers verify it anyway).
    if (existing?.size !== data.length) {
      await writeFileAtomic(path, data);
    }
    return { mediaType, digest, size: data.length };
  }

  /** Size of the blob if it is in the store (not verified: readers verify). */
  async hasBlob(digest: string): Promise<number | undefined> {
    try {
      return await this.statBlob(digest);
    } catch (err) {
      if (err instanceof SkiffError && err.code === 'SKIFF_IMAGE_NOT_FOUND') return undefined;
      throw err;
    }
  }

  /**
   * Streams a blob into the store: hashed and counted while written to a temp file, renamed
   * into place only when digest and size match `expected` (when given). More bytes than the
   * expected size stop the write at once. Mismatches throw SKIFF_IMAGE_INVALID and leave nothing.
   */
  async putBlobStream(source: AsyncIterable<Uint8Array>, expected: { digest?: string; size?: number } = {}): Promise<{ digest: string; size: number }> {
    if (expected.digest !== undefined) assertDigest(expected.digest, 'expected digest');
    const tmp = join(this.dir, 'blobs', 'sha256', `.tmp-${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    const fh = await open(tmp, 'wx', 0o644);
    try {
      try {
        for await (const chunk of source) {
          size += chunk.length;
          if (expected.size !== undefined && size > expected.size) throw invalid(`blob upload: more than the declared ${expected.size} bytes`);
          hash.update(chunk);
          let off = 0;
          while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      const digest = `sha256:${hash.digest('hex')}`;
      if (expected.size !== undefined && size !== expected.size) throw invalid(`blob upload: ${size} bytes, expected ${expected.size}`);
      if (expected.digest !== undefined && digest !== expected.digest) throw invalid(`blob upload: content hashes to ${digest}, expected ${expected.digest}`);
      await rename(tmp, this.blobPath(digest));
      return { digest, size };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * Removes blobs reachable neither from index.json nor from `keep` (manifest or index
   * digests in use, e.g. every deployed function version). Blobs and temp files younger than
   * `graceMs` stay: they may belong to a push whose manifest is not written yet.
   */
  async gc(keep: Set<string>, opts: { graceMs?: number } = {}): Promise<{ removed: string[]; freedBytes: number; kept: number }> {
    const graceMs = opts.graceMs ?? 60 * 60 * 1000;
    return withLockFile(join(this.dir, 'index.json.lock'), async () => {
      const live = new Set<string>();
      const roots = [...(await this.readIndex()).manifests.map((d) => d.digest), ...keep];
      for (const d of roots) await this.mark(d, live, 0);
      const removed: string[] = [];
      let freedBytes = 0;
      const dir = join(this.dir, 'blobs', 'sha256');
      const now = Date.now();
      for (const name of await readdir(dir)) {
        const digest = `sha256:${name}`;
        if (live.has(digest)) continue;
        const st = await stat(join(dir, name)).catch(() => undefined);
        if (!st || now - st.mtimeMs < graceMs) continue;
        await unlink(join(dir, name)).catch(() => undefined);
        if (name.startsWith('.')) continue;
        removed.push(digest);
        freedBytes += st.size;
      }
      return { removed, freedBytes, kept: live.size };
    });
  }

  /** Marks a manifest or index and everything it names; missing or unreadable blobs are skipped. */
  private async mark(digest: string, live: Set<string>, depth: number): Promise<void> {
    if (live.has(digest) || depth > 4 || !/^sha256:[a-f0-9]{64}$/.test(digest)) return;
    live.add(digest);
    let doc: unknown;
    try {
      doc = parseJson(await this.readJsonBlob(digest, undefined), `blob ${digest}`);
    } catch {
      return;
    }
    const o = doc as { manifests?: unknown; config?: { digest?: unknown }; layers?: unknown };
    if (Array.isArray(o.manifests)) {
      for (const m of o.manifests) if (typeof m?.digest === 'string') await this.mark(m.digest, live, depth + 1);
      return;
    }
    if (typeof o.config?.digest === 'string') live.add(o.config.digest);
    if (Array.isArray(o.layers)) for (const l of o.layers) if (typeof l?.digest === 'string') live.add(l.digest);
  }

  async tag(ref: string, manifest: Descriptor): Promise<void> {
    const name = checkedRef(ref);
    assertDigest(manifest.digest, 'manifest digest');
    await this.updateIndex((index) => {
      const entry: Descriptor = {
        mediaType: manifest.mediaType,
        digest: manifest.digest,
        size: manifest.size,
        ...(manifest.platform ? { platform: manifest.platform } : {}),
        annotations: { ...manifest.annotations, [REF_ANNOTATION]: name },
      };
      index.manifests = index.manifests.filter((d) => d.annotations?.[REF_ANNOTATION] !== name);
      index.manifests.push(entry);
      return index;
    });
  }

  async list(): Promise<Array<{ ref: string; digest: string; size: number }>> {
    const index = await this.readIndex();
    const out: Array<{ ref: string; digest: string; size: number }> = [];
    for (const d of index.manifests) {
      const ref = d.annotations?.[REF_ANNOTATION];
      if (ref !== undefined) out.push({ ref, digest: d.digest, size: d.size });
    }
    return out;
  }

  private async readIndex(): Promise<ImageIndex> {
    const path = join(this.dir, 'index.json');
    const bytes = await readFile(path).catch((err: unknown) => {
      if (isMissing(err)) return undefined;
      throw err;
    });
    if (!bytes) return emptyIndex();
    return checkIndex(parseJson(bytes, path), path);
  }

  private updateIndex(change: (index: ImageIndex) => ImageIndex): Promise<void> {
    const run = this.indexLock.then(() =>
      withLockFile(join(this.dir, 'index.json.lock'), async () => {
        const next = change(await this.readIndex());
        await writeFileAtomic(join(this.dir, 'index.json'), JSON.stringify(next));
      }),
    );
    this.indexLock = run.catch(() => undefined);
    return run;
  }
}
