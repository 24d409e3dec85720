import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import tar, { type Header } from 'tar-stream';
import { SkiffError } from '@skiff/contracts';
import { REF_ANNOTATION, type Descriptor, type ImageStore } from '@skiff/image';
import { BlobTooLargeError, BlobWriter, DigestMismatchError, blobSize } from './blob-writer.js';
import { MANIFEST_MEDIA_TYPES, ManifestProblem, parseManifest } from './manifests.js';
import { isValidName, isValidTag } from './paths.js';

/*
 * Import of an oci-archive: a tar of an OCI image layout (`oci-layout`, `index.json`,
 * `blobs/sha256/<hex>`), e.g. `tar -C layout -cf - .` or skopeo's `oci-archive:` transport.
 * The tar is read as a stream: each blob goes to a temporary file in the store, hashed on the
 * way and checked against its file name. Only when the whole archive has been read and every
 * tagged image is complete (manifests, configs and layers present with the sizes their
 * descriptors give) do the blobs move into the store and the tags change. Any failure
 * removes the temporary files and tags nothing.
 */

export interface ArchiveLimits {
  maxArchiveBytes: number;
  maxBlobBytes: number;
  /** Tar entries, directories included. */
  maxEntries?: number;
}

export interface ImportedImage {
  ref: string;
  digest: string;
  mediaType: string;
  size: number;
}

const MAX_INDEX_BYTES = 8 * 1024 * 1024;
const MAX_LAYOUT_BYTES = 64 * 1024;
const MAX_DEPTH = 4;
const BLOB_RE = /^blobs\/sha256\/([a-f0-9]{64})$/;

function bad(detail: string, cause?: unknown): SkiffError {
  return new SkiffError('SKIFF_VALIDATION_FAILED', `image archive: ${detail}`, { cause, errors: [{ field: 'body', message: detail }] });
}

function tooLarge(detail: string): SkiffError {
  return new SkiffError('SKIFF_BODY_TOO_LARGE', `image archive: ${detail}`);
}

/** `./blobs/sha256/x` → `blobs/sha256/x`; directories lose their trailing slash. */
function entryName(raw: string): string {
  let n = raw;
  while (n.startsWith('./')) n = n.slice(2);
  while (n.endsWith('/')) n = n.slice(0, -1);
  return n === '.' ? '' : n;
}

async function drain(entry: Readable): Promise<void> {
  for await (const _ of entry) void _;
}

async function readCapped(entry: Readable, max: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of entry as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > max) throw bad(`${what} is larger than ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, n);
}

class ByteLimit extends Transform {
  private seen = 0;
  constructor(private readonly max: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.max) cb(tooLarge(`larger than the limit of ${this.max} bytes (SKIFF_MAX_ARCHIVE_BYTES)`));
    else cb(null, chunk);
  }
}

/** A blob of the archive: sealed in a temporary file, or already in the store (then not rewritten). */
interface Staged {
  size: number;
  writer: BlobWriter | undefined;
}

/** The store ref for an index.json entry's ref.name: `name:tag` as is; a bare tag needs `repository`. */
function refFor(refName: string, repository: string | undefined): string {
  const colon = refName.lastIndexOf(':');
  const [name, tag] = colon === -1 ? [repository, refName] : [refName.slice(0, colon), refName.slice(colon + 1)];
  if (name === undefined) {
    throw bad(`index.json tags an image only as ${JSON.stringify(refName)}; pass ?repository=NAME to import it as NAME:${refName}`);
  }
  if (!isValidName(name) || !isValidTag(tag!) || name.length + tag!.length + 1 > 255) {
    throw bad(`index.json ref ${JSON.stringify(refName)} does not give a valid name:tag (${JSON.stringify(`${name}:${tag}`)})`);
  }
  return `${name}:${tag}`;
}

export async function importArchive(store: ImageStore, source: Readable, repository: string | undefined, limits: ArchiveLimits): Promise<ImportedImage[]> {
  const maxEntries = limits.maxEntries ?? 100_000;
  const staged = new Map<string, Staged>();
  const writers: BlobWriter[] = [];
  let layout: Buffer | undefined;
  let indexJson: Buffer | undefined;

  const extract = tar.extract();
  const limiter = new ByteLimit(limits.maxArchiveBytes);
  // Plain pipes, not pipeline(): a failure must not destroy the request stream, or the
  // error response could not be sent. Failures reach the extractor, which ends the loop.
  const fail = (err: Error) => extract.destroy(err);
  source.on('error', fail);
  limiter.on('error', fail);
  source.pipe(limiter).pipe(extract);
  const stopReading = () => {
    source.off('error', fail);
    source.unpipe(limiter);
    // Whatever is still coming is read and dropped, so the reply can go out.
    source.resume();
  };
  try {
    try {
      let entries = 0;
      for await (const raw of extract) {
        const entry = raw as unknown as Readable & { header: Header };
        entries += 1;
        if (entries > maxEntries) throw bad(`more than ${maxEntries} entries`);
        const h = entry.header;
        const name = entryName(h.name);
        const isFile = h.type === 'file' || h.type === 'contiguous-file';
        if (name === 'oci-layout' && isFile) {
          layout = await readCapped(entry, MAX_LAYOUT_BYTES, 'oci-layout');
          continue;
        }
        if (name === 'index.json' && isFile) {
          indexJson = await readCapped(entry, MAX_INDEX_BYTES, 'index.json');
          continue;
        }
        const blob = BLOB_RE.exec(name);
        if (!blob) {
          if (name.startsWith('blobs/') && isFile && !name.slice(name.lastIndexOf('/') + 1).startsWith('.')) {
            throw bad(`${name}: only sha256 blobs (blobs/sha256/<64 hex>) are supported`);
          }
          // Directories, dotfiles and anything that is not part of the layout: read past.
          await drain(entry);
          continue;
        }
        if (!isFile) throw bad(`${name} is a ${h.type ?? 'special entry'}, not a regular file`);
        const digest = `sha256:${blob[1]!}`;
        const size = h.size ?? 0;
        if (size > limits.maxBlobBytes) throw tooLarge(`blob ${digest} has ${size} bytes, over the limit of ${limits.maxBlobBytes} (SKIFF_MAX_BLOB_BYTES)`);
        if (staged.has(digest) || (await blobSize(store, digest)) === size) {
          // Already here: check the archive's copy, keep the one we have.
          const hash = createHash('sha256');
          for await (const chunk of entry as AsyncIterable<Buffer>) hash.update(chunk);
          const actual = `sha256:${hash.digest('hex')}`;
          if (actual !== digest) throw bad(`${name} hashes to ${actual}`);
          if (!staged.has(digest)) staged.set(digest, { size, writer: undefined });
          continue;
        }
        const writer = await BlobWriter.create(store, limits.maxBlobBytes);
        writers.push(writer);
        await writer.append(entry as AsyncIterable<Buffer>);
        try {
          await writer.seal(digest, size);
        } catch (err) {
          if (err instanceof DigestMismatchError) throw bad(`${name} hashes to ${err.actual}`);
          throw err;
        }
        staged.set(digest, { size, writer });
      }
    } catch (err) {
      stopReading();
      extract.destroy();
      if (err instanceof SkiffError) throw err;
      if (err instanceof BlobTooLargeError) throw tooLarge(`a blob is larger than ${err.limit} bytes (SKIFF_MAX_BLOB_BYTES)`);
      const e = err as { code?: string; message?: string };
      if (e.code === 'ECONNRESET' || e.code === 'ERR_STREAM_PREMATURE_CLOSE') throw err;
      // tar-stream's complaints (bad header checksum, unexpected end of data, ...).
      if (typeof (err as { syscall?: unknown }).syscall !== 'string') throw bad(`not a readable tar: ${e.message ?? String(err)}`, err);
      throw err;
    }

    if (!layout) throw bad('no oci-layout file: this is not an OCI image layout');
    let layoutDoc: unknown;
    try {
      layoutDoc = JSON.parse(layout.toString('utf8'));
    } catch (err) {
      throw bad('oci-layout is not JSON', err);
    }
    if ((layoutDoc as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion !== '1.0.0') throw bad('oci-layout does not say imageLayoutVersion 1.0.0');
    if (!indexJson) throw bad('no index.json');

    let top: Descriptor[];
    try {
      const parsed = parseManifest(indexJson);
      if (parsed.kind !== 'index') throw new ManifestProblem('it is not an image index');
      top = parsed.references;
    } catch (err) {
      if (err instanceof ManifestProblem) throw bad(`index.json: ${err.message}`);
      throw err;
    }

    const used = new Set<string>();
    const present = async (d: Descriptor, what: string): Promise<void> => {
      used.add(d.digest);
      const size = staged.get(d.digest)?.size ?? (await blobSize(store, d.digest));
      if (size === undefined) throw bad(`${what} names ${d.digest}, which is neither in the archive nor in the store`);
      if (size !== d.size) throw bad(`${what} gives ${d.digest} a size of ${d.size}, but the blob has ${size} bytes`);
    };
    const readDoc = async (d: Descriptor): Promise<Buffer> => {
      const writer = staged.get(d.digest)?.writer;
      // Staged files were hashed as they arrived; store blobs are verified by readBlob.
      return writer ? readFile(writer.path) : store.readBlob(d.digest, d.size);
    };
    const checked = new Set<string>();
    const visit = async (d: Descriptor, what: string, depth: number): Promise<void> => {
      if (checked.has(d.digest)) return;
      if (depth > MAX_DEPTH) throw bad(`${what}: indexes nested deeper than ${MAX_DEPTH}`);
      if (!MANIFEST_MEDIA_TYPES.includes(d.mediaType)) throw bad(`${what} has media type ${d.mediaType}, not an image manifest or index`);
      await present(d, what);
      if (d.size > MAX_INDEX_BYTES) throw bad(`${what}: manifest ${d.digest} is larger than ${MAX_INDEX_BYTES} bytes`);
      let parsed;
      try {
        parsed = parseManifest(await readDoc(d), d.mediaType);
      } catch (err) {
        if (err instanceof ManifestProblem) throw bad(`manifest ${d.digest}: ${err.message}`);
        throw err;
      }
      if (parsed.mediaType !== d.mediaType) throw bad(`${what} says ${d.mediaType}, but ${d.digest} is a ${parsed.mediaType}`);
      for (const [i, ref] of parsed.references.entries()) {
        const label = `manifest ${d.digest} ${parsed.kind === 'index' ? `manifests[${i}]` : i === 0 ? 'config' : `layers[${i - 1}]`}`;
        if (parsed.kind === 'index') await visit(ref, label, depth + 1);
        else await present(ref, label);
      }
      checked.add(d.digest);
    };

    const wanted: Array<{ ref: string; desc: Descriptor }> = [];
    for (const [i, d] of top.entries()) {
      const refName = d.annotations?.[REF_ANNOTATION];
      if (refName === undefined) continue;
      const ref = refFor(refName, repository);
      await visit(d, `index.json manifests[${i}] (${refName})`, 0);
      wanted.push({ ref, desc: d });
    }
    if (wanted.length === 0) throw bad(`index.json names no image: no entry has an ${REF_ANNOTATION} annotation`);

    // Everything checks out: publish the blobs the tagged images use, then the tags.
    for (const [digest, s] of staged) {
      if (s.writer && used.has(digest)) await s.writer.moveIntoStore();
    }
    const out: ImportedImage[] = [];
    for (const { ref, desc } of wanted) {
      await store.tag(ref, { mediaType: desc.mediaType, digest: desc.digest, size: desc.size });
      out.push({ ref, digest: desc.digest, mediaType: desc.mediaType, size: desc.size });
    }
    return out;
  } finally {
    // Moved files are gone from their temporary paths already; the rest is removed.
    await Promise.all(writers.map((w) => w.discard()));
  }
}
