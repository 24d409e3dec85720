import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { FUNCTION_NAME_PATTERN, SkiffError } from '@skiff/contracts';

/** Each function gets a user namespace mapping this many ids: container 0 … 65535. */
export const RANGE_SIZE = 65_536;

/** A range is kept for ever under the function's name: only a name the API accepts gets one. */
function checkName(fn: string): void {
  if (!FUNCTION_NAME_PATTERN.test(fn)) throw new SkiffError('SKIFF_BAD_MESSAGE', `"${fn.slice(0, 80)}" is not a function name; it gets no uid range`);
}

/**
 * Host uid/gid ranges for container users, one per function, so two functions never share a
 * host uid. Assignments are kept in a small JSON file in the node's work dir, so a function
 * keeps its range across restarts (its files in a cache stay its own).
 *
 * A stem cell (a runtime container started before its function is known) runs in a range that
 * is reserved for it: no function has it, and none is given it while it is reserved. The first
 * function that adopts the stem cell takes that range as its own, for good; a reservation that
 * no function took is forgotten (a worker that restarts has no stem cells left, and their
 * ranges never held a function).
 */
export class UidRanges {
  private readonly slots: Map<string, number>;
  private readonly reserved = new Set<number>();

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
      checkName(fn);
      slot = this.freeSlot();
      this.slots.set(fn, slot);
      this.save();
    }
    return this.hostIdOf(slot);
  }

  /** The function's slot, or undefined when it has no range on this node yet. */
  slotOf(fn: string): number | undefined {
    return this.slots.get(fn);
  }

  hostIdOf(slot: number): number {
    return this.base + slot * RANGE_SIZE;
  }

  /** Reserves the lowest slot no function has and no stem cell holds, for a stem cell. */
  reserve(): number {
    const slot = this.freeSlot();
    this.reserved.add(slot);
    return slot;
  }

  /** A stem cell that no function adopted gives its reservation back. */
  release(slot: number): void {
    this.reserved.delete(slot);
  }

  /**
   * Gives a stem cell's reserved slot to a function that has none, for good. Throws if the
   * function has a range already or the slot is not reserved: a range is never shared.
   */
  assign(fn: string, slot: number): void {
    checkName(fn);
    if (this.slots.has(fn)) throw new Error(`function "${fn}" has a uid range already`);
    if (!this.reserved.delete(slot)) throw new Error(`uid slot ${slot} is not reserved for a stem cell`);
    this.slots.set(fn, slot);
    this.save();
  }

  private freeSlot(): number {
    const used = new Set([...this.slots.values(), ...this.reserved]);
    let slot = 0;
    while (used.has(slot)) slot++;
    if (this.base + (slot + 1) * RANGE_SIZE > 2 ** 32 - 2) throw new Error('no free uid range left for another function');
    return slot;
  }

  private save(): void {
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(Object.fromEntries(this.slots)));
    renameSync(tmp, this.file);
  }
}
