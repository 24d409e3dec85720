import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { invalid, notFound } from './errors.js';

export interface BlobFeedOptions {
  digest: string;
  size: number;
  /** What the blob is, for error messages ("layer 2"). */
  label: string;
  /** Bytes per read. */
  chunk: number;
  /**
   * Reuse a few read buffers instead of allocating one per read. Only for a sink that is
   * done with a chunk when its write callback runs, as zlib is; a pass-through stream hands
   * the same bytes on and is not.
   */
  reuse: boolean;
}

/** Read buffers in use at once by one feed: one with zlib, one queued, one being read. */
const IN_FLIGHT = 3;

/**
 * Read buffers kept between blobs, per thread (a layer thread reads one blob at a time).
 * Memory the process has touched before is cheap; a fresh page costs a fault.
 */
const spare: Buffer[] = [];

function takeBuffer(size: number): Buffer {
  const kept = spare.pop();
  return kept?.length === size ? kept : Buffer.allocUnsafe(size);
}

function keepBuffer(buf: Buffer): void {
  if (spare.length < IN_FLIGHT) spare.push(buf);
}

/**
 * Reads a blob once, front to back, on the calling thread: each block is counted and hashed,
 * then written to `sink`, so what is verified is exactly what is unpacked. More bytes than
 * declared throw at once; the sink is ended only when size and digest match, so nothing
 * downstream sees a clean end of unverified bytes. Stops quietly if the sink is destroyed
 * (the pipeline behind it reports why).
 */
export async function feedBlob(path: string, sink: Writable, opts: BlobFeedOptions): Promise<void> {
  const { digest, size, label } = opts;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`${label} ${digest} is not in the store`, err);
    throw err;
  }
  // One waiter at most: this loop, for 'drain' or for a buffer to come back.
  let wake: (() => void) | undefined;
  const wakeUp = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const wait = (event?: 'drain'): Promise<void> =>
    new Promise<void>((resolve) => {
      wake = resolve;
      if (event) sink.once(event, wakeUp);
    }).finally(() => {
      if (event) sink.off(event, wakeUp);
    });
  sink.once('close', wakeUp);
  const free: Buffer[] = [];
  let over = false;
  /** A write callback: zlib is done with `buf`. */
  const giveBack = (buf: Buffer): void => {
    if (over) return keepBuffer(buf);
    free.push(buf);
    wakeUp();
  };
  try {
    const hash = createHash('sha256');
    let taken = 0;
    let seen = 0;
    while (!sink.destroyed) {
      let buf = free.pop();
      if (!buf && opts.reuse && taken >= IN_FLIGHT) {
        await wait(); // every buffer is still with zlib
        continue;
      }
      if (!buf) {
        buf = opts.reuse ? takeBuffer(opts.chunk) : Buffer.allocUnsafe(opts.chunk);
        taken += 1;
      }
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) {
        if (opts.reuse) free.push(buf);
        if (seen !== size) throw invalid(`${label} ${digest}: ${seen} bytes, expected ${size}`);
        const actual = `sha256:${hash.digest('hex')}`;
        if (actual !== digest) throw invalid(`${label} ${digest}: content hashes to ${actual}`);
        sink.end();
        return;
      }
      seen += n;
      if (seen > size) throw invalid(`${label} ${digest}: more than the declared ${size} bytes`);
      const block = buf.subarray(0, n);
      hash.update(block);
      const held = buf;
      const more = sink.write(block, () => {
        if (opts.reuse) giveBack(held);
      });
      if (!more) await wait('drain');
    }
  } finally {
    over = true;
    for (const buf of free.splice(0)) keepBuffer(buf);
    sink.off('close', wakeUp);
    closeSync(fd);
  }
}
