import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Each function gets a user namespace mapping this many ids: container 0 … 65535. */
export const RANGE_SIZE = 65_536;

/**
 * Host uid/gid ranges for container users, one per function, so two functions never share a
 * host uid. Assignments are kept in a small JSON file in the node's work dir, so a function
 * keeps its range across restarts (its files in a cache stay its own).
 */
export class UidRanges {
  private readonly slots: Map<string, number>;

  constructor(
    private readonly file: string,
    private readonly base: number,
  ) {
    this.slots = new Map(Object.entries(this.read()));
  }

  private read(): Record<string, number> {
    try {
      const parsed: unknown = JSON.parse(readFileSync(this.file, 'utf8'));
      if (parsed && typeof parsed === 'object' && Object.values(parsed).every((v) => Number.isInteger(v) && v >= 0)) {
        return parsed as Record<string, number>;
      }
      throw new Error(`${this.file} is not a map of function names to slots`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw err;
    }
  }

  /** The first host id of the function's range; assigns the lowest free slot on first use. */
  hostIdFor(fn: string): number {
    let slot = this.slots.get(fn);
    if (slot === undefined) {
      const used = new Set(this.slots.values());
      slot = 0;
      while (used.has(slot)) slot++;
      if (this.base + (slot + 1) * RANGE_SIZE > 2 ** 32 - 2) throw new Error('no free uid range left for another function');
      this.slots.set(fn, slot);
      this.save();
    }
    return this.base + slot * RANGE_SIZE;
  }

  private save(): void {
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.slots)));
    renameSync(tmp, this.file);
  }
}
