import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { SkiffError } from '@skiff/contracts';
import { writeFileAtomic } from './atomic.js';
import { assertDigest, DigestVerifier, sha256 } from './digest.js';
import { checkConfig, checkIndex, checkManifest, parseJson } from './documents.js';
import { invalid, notFound } from './errors.js';
import { isIndexType, isManifestType, MEDIA, REF_ANNOTATION } from './media.js';
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
  /** Serialises index.json read-modify-write within this process. */
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
    const want = normalizeRef(ref);
    const index = await this.readIndex();
    // Later entries win, matching what tag() would have left.
    const entry = [...index.manifests].reverse().find((d) => d.annotations?.[REF_ANNOTATION] === want);
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
    const source = createReadStream(path);
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
      const tmp = join(this.dir, 'blobs', 'sha256', `.tmp-${randomBytes(8).toString('hex')}`);
      try {
        await writeFile(tmp, data, { flag: 'wx', mode: 0o644 });
        await rename(tmp, path);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
    }
    return { mediaType, digest, size: data.length };
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
    const run = this.indexLock.then(async () => {
      const next = change(await this.readIndex());
      await writeFileAtomic(join(this.dir, 'index.json'), JSON.stringify(next));
    });
    this.indexLock = run.catch(() => undefined);
    return run;
  }
}
