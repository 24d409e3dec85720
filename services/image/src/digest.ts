import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { invalid } from './errors.js';

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(value: unknown): value is string {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

/** Digests become file names, so they are checked before any path is built from them. */
export function assertDigest(value: unknown, what = 'digest'): string {
  if (!isDigest(value)) throw invalid(`${what} ${JSON.stringify(value)} is not a sha256:<64 hex> digest`);
  return value;
}

export function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export interface VerifyOptions {
  digest: string;
  size?: number | undefined;
  /** What the bytes are, for the error message ("layer 2 diffID", ...). */
  label: string;
  /** Called with each chunk length before it passes on; may throw to stop the stream. */
  onBytes?: ((n: number) => void) | undefined;
}

/** Hashes and counts bytes as they pass; check() throws unless digest and size match. */
export class DigestCheck {
  private readonly hash: Hash = createHash('sha256');
  private seen = 0;

  constructor(private readonly opts: VerifyOptions) {}

  /** Counts (failing at once past the declared size) and hashes `chunk`. */
  update(chunk: Uint8Array): void {
    this.seen += chunk.length;
    const { size, label, digest } = this.opts;
    if (size !== undefined && this.seen > size) throw invalid(`${label} ${digest}: more than the declared ${size} bytes`);
    this.opts.onBytes?.(chunk.length);
    this.hash.update(chunk);
  }

  check(): void {
    const { size, label, digest } = this.opts;
    if (size !== undefined && this.seen !== size) throw invalid(`${label} ${digest}: ${this.seen} bytes, expected ${size}`);
    const actual = `sha256:${this.hash.digest('hex')}`;
    if (actual !== digest) throw invalid(`${label} ${digest}: content hashes to ${actual}`);
  }
}

/**
 * Pass-through that hashes and counts. It fails as soon as the size is exceeded and, at the
 * end, if digest or size differ, so a consumer downstream never sees a clean end of
 * unverified bytes.
 */
export class DigestVerifier extends Transform {
  private readonly check: DigestCheck;

  constructor(opts: VerifyOptions) {
    super();
    this.check = new DigestCheck(opts);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.check.update(chunk);
    } catch (err) {
      cb(err as Error);
      return;
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.check.check();
    } catch (err) {
      cb(err as Error);
      return;
    }
    cb();
  }
}
