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

/** What a layer thread needs to count against the same budget: the limits and the shared counters. */
export interface SharedBudget {
  limits: UnpackLimits;
  counters: SharedArrayBuffer;
}

const BYTES = 0;
const ENTRIES = 1;

/**
 * Running totals for one unpack; every check throws SKIFF_LAYER_UNSAFE naming the limit.
 * The totals live in shared memory, so layers unpacked at once on several threads draw
 * on one budget (each addition is atomic; a limit trips in whichever layer crosses it).
 */
export class Budget {
  private readonly counters: BigInt64Array;

  constructor(readonly limits: UnpackLimits, shared?: SharedArrayBuffer) {
    this.counters = new BigInt64Array(shared ?? new SharedArrayBuffer(2 * BigInt64Array.BYTES_PER_ELEMENT));
  }

  /** The same budget on another thread. */
  static attach(shared: SharedBudget): Budget {
    return new Budget(shared.limits, shared.counters);
  }

  share(): SharedBudget {
    return { limits: this.limits, counters: this.counters.buffer as SharedArrayBuffer };
  }

  get bytes(): number {
    return Number(Atomics.load(this.counters, BYTES));
  }

  get entries(): number {
    return Number(Atomics.load(this.counters, ENTRIES));
  }

  addBytes(n: number): void {
    const total = Number(Atomics.add(this.counters, BYTES, BigInt(n))) + n;
    if (total > this.limits.maxBytes) {
      throw unsafe(`image exceeds limit maxBytes (${this.limits.maxBytes} uncompressed bytes)`);
    }
  }

  addEntry(name: string): void {
    const total = Number(Atomics.add(this.counters, ENTRIES, 1n)) + 1;
    if (total > this.limits.maxEntries) {
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
