import { createHash, randomUUID, type Hash } from 'node:crypto';
import { opendir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ImageStore } from '@skiff/image';

/**
 * Temporary blob files live in the store's own blobs/sha256 directory, so the final rename
 * is atomic (same filesystem) and readers never see a half-written blob under its digest.
 * The prefix is ours alone: the start-up sweep removes only files with it.
 */
export const TEMP_PREFIX = '.upload-';

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isSha256Digest(value: unknown): value is string {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

export function tempDir(store: ImageStore): string {
  return join(store.dir, 'blobs', 'sha256');
}

/** Size of the blob in the store, or undefined when it is not there. */
export async function blobSize(store: ImageStore, digest: string): Promise<number | undefined> {
  try {
    const st = await stat(store.blobPath(digest));
    return st.isFile() ? st.size : undefined;
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
}

export class BlobTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`the blob is larger than the limit of ${limit} bytes`);
  }
}

export class DigestMismatchError extends Error {
  constructor(readonly expected: string, readonly actual: string, readonly size: number) {
    super(`the content hashes to ${actual}, not ${expected}`);
  }
}

/**
 * One blob being written: appended to a temporary file, hashed as it goes, and renamed to
 * blobs/sha256/<hex> only once digest (and size, when known) check out. The file handle is
 * opened per append, so an idle upload session holds no descriptor. `size` and the hash
 * always cover exactly the bytes on disk: a failed write poisons the writer.
 */
export class BlobWriter {
  /** Also the upload session id: a random UUID. */
  readonly id: string = randomUUID();
  readonly path: string;
  private readonly hash: Hash = createHash('sha256');
  private written = 0;
  private poisoned: Error | undefined;
  private done = false;
  private sealed: string | undefined;

  private constructor(private readonly store: ImageStore, readonly maxBytes: number) {
    this.path = join(tempDir(store), `${TEMP_PREFIX}${this.id}`);
  }

  static async create(store: ImageStore, maxBytes: number): Promise<BlobWriter> {
    const w = new BlobWriter(store, maxBytes);
    const fh = await open(w.path, 'wx', 0o644);
    await fh.close();
    return w;
  }

  get size(): number {
    return this.written;
  }

  /**
   * Appends everything `source` yields. Throws BlobTooLargeError as soon as the limit would be
   * passed (nothing beyond it is written). On a client disconnect the bytes that did arrive
   * stay appended and counted, so the upload can go on from `size`.
   */
  async append(source: Readable | AsyncIterable<Uint8Array | string>): Promise<number> {
    this.usable();
    const fh = await open(this.path, 'a');
    let n = 0;
    // Stopping early (over the limit) must leave a request stream alive, so the error reply can go out.
    const pieces = source instanceof Readable ? source.iterator({ destroyOnReturn: false }) : source;
    try {
      for await (const piece of pieces as AsyncIterable<Uint8Array | string>) {
        const chunk = typeof piece === 'string' ? Buffer.from(piece) : piece;
        if (this.written + chunk.length > this.maxBytes) throw new BlobTooLargeError(this.maxBytes);
        try {
          await fh.write(chunk);
        } catch (err) {
          this.poisoned = err as Error;
          throw err;
        }
        this.hash.update(chunk);
        this.written += chunk.length;
        n += chunk.length;
      }
    } finally {
      await fh.close();
    }
    return n;
  }

  /**
   * Checks digest (and size, when given) and flushes the file to disk; on a mismatch the
   * temporary file is removed and DigestMismatchError thrown. moveIntoStore() then publishes it.
   */
  async seal(expected: string, expectedSize?: number): Promise<{ digest: string; size: number }> {
    this.usable();
    this.done = true;
    const actual = `sha256:${this.hash.digest('hex')}`;
    try {
      if (actual !== expected) throw new DigestMismatchError(expected, actual, this.written);
      if (expectedSize !== undefined && expectedSize !== this.written) {
        throw new DigestMismatchError(expected, `${this.written} bytes, expected ${expectedSize}`, this.written);
      }
      const fh = await open(this.path, 'r');
      try {
        await fh.datasync();
      } finally {
        await fh.close();
      }
      this.sealed = expected;
      return { digest: expected, size: this.written };
    } catch (err) {
      await rm(this.path, { force: true });
      throw err;
    }
  }

  /** The atomic step: the sealed file appears under its digest, whole. */
  async moveIntoStore(): Promise<void> {
    if (this.sealed === undefined) throw new Error('blob writer not sealed');
    await rename(this.path, this.store.blobPath(this.sealed));
  }

  /** seal() and moveIntoStore() in one. */
  async commit(expected: string, expectedSize?: number): Promise<{ digest: string; size: number }> {
    const out = await this.seal(expected, expectedSize);
    try {
      await this.moveIntoStore();
    } catch (err) {
      await rm(this.path, { force: true });
      throw err;
    }
    return out;
  }

  async discard(): Promise<void> {
    this.done = true;
    await rm(this.path, { force: true });
  }

  private usable(): void {
    if (this.poisoned) throw this.poisoned;
    if (this.done) throw new Error('blob writer already finished');
  }
}

/**
 * Removes temporary blob files older than `olderThanMs`, left by a gateway that stopped
 * mid-upload. Younger ones may belong to another gateway sharing the store, so they stay.
 */
export async function sweepTempFiles(store: ImageStore, olderThanMs: number, now = Date.now()): Promise<number> {
  const dir = tempDir(store);
  let removed = 0;
  for await (const entry of await opendir(dir)) {
    if (!entry.name.startsWith(TEMP_PREFIX)) continue;
    const path = join(dir, entry.name);
    const st = await stat(path).catch(() => undefined);
    if (st && now - st.mtimeMs >= olderThanMs) {
      await rm(path, { force: true });
      removed += 1;
    }
  }
  return removed;
}
