import { unsafe } from './errors.js';

export interface UnpackLimits {
  /** Uncompressed tar bytes over all layers (headers included), so gzip bombs stop early. */
  maxBytes: number;
  /** Tar entries over all layers, whiteouts and dropped devices included. */
  maxEntries: number;
  /** Bytes in one entry name or link target. */
  maxPathLength: number;
  /** Components in one entry path. */
  maxDepth: number;
}

export const DEFAULT_LIMITS: UnpackLimits = {
  maxBytes: 4 * 1024 ** 3,
  maxEntries: 1_000_000,
  maxPathLength: 4096,
  maxDepth: 128,
};

/** Running totals for one unpack; every check throws SKIFF_LAYER_UNSAFE naming the limit. */
export class Budget {
  bytes = 0;
  entries = 0;

  constructor(readonly limits: UnpackLimits) {}

  addBytes(n: number): void {
    this.bytes += n;
    if (this.bytes > this.limits.maxBytes) {
      throw unsafe(`image exceeds limit maxBytes (${this.limits.maxBytes} uncompressed bytes)`);
    }
  }

  addEntry(name: string): void {
    this.entries += 1;
    if (this.entries > this.limits.maxEntries) {
      throw unsafe(`image exceeds limit maxEntries (${this.limits.maxEntries}) at ${JSON.stringify(name.slice(0, 200))}`);
    }
  }

  checkPath(name: string, components: number, what = 'entry'): void {
    if (Buffer.byteLength(name) > this.limits.maxPathLength) {
      throw unsafe(`${what} ${JSON.stringify(name.slice(0, 200))}… exceeds limit maxPathLength (${this.limits.maxPathLength})`);
    }
    if (components > this.limits.maxDepth) {
      throw unsafe(`${what} ${JSON.stringify(name.slice(0, 200))} exceeds limit maxDepth (${this.limits.maxDepth})`);
    }
  }
}
