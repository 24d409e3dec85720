import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RANGE_SIZE, UidRanges } from './uids.js';

describe('UidRanges', () => {
  const file = () => join(mkdtempSync(join(tmpdir(), 'skiff-uids-')), 'uids.json');

  it('gives each function its own range and keeps it', () => {
    const f = file();
    const r = new UidRanges(f, 1_000_000);
    expect(r.hostIdFor('a')).toBe(1_000_000);
    expect(r.hostIdFor('b')).toBe(1_000_000 + RANGE_SIZE);
    expect(r.hostIdFor('a')).toBe(1_000_000);
    // A restart reads the same assignments back.
    const again = new UidRanges(f, 1_000_000);
    expect(again.hostIdFor('b')).toBe(1_000_000 + RANGE_SIZE);
    expect(again.hostIdFor('c')).toBe(1_000_000 + 2 * RANGE_SIZE);
  });

  it('refuses a corrupt assignments file instead of reusing ranges', () => {
    const f = file();
    writeFileSync(f, '{"a": "x"}');
    expect(() => new UidRanges(f, 1_000_000)).toThrow(/not a map/);
  });

  it('gives a stem cell a range no function has, and that range to the first function that adopts it', () => {
    const f = file();
    const r = new UidRanges(f, 1_000_000);
    expect(r.hostIdFor('a')).toBe(1_000_000);
    const stem = r.reserve();
    expect(stem).toBe(1);
    // While reserved, no function gets it.
    expect(r.hostIdFor('b')).toBe(1_000_000 + 2 * RANGE_SIZE);
    r.assign('c', stem);
    expect(r.hostIdFor('c')).toBe(1_000_000 + RANGE_SIZE);
    expect(new UidRanges(f, 1_000_000).slotOf('c')).toBe(1);
    // A function with a range never takes a second one, and a slot goes to one function only.
    const other = r.reserve();
    expect(() => r.assign('a', other)).toThrow(/has a uid range already/);
    expect(() => r.assign('d', stem)).toThrow(/not reserved/);
  });

  it('forgets a reservation no function took', () => {
    const f = file();
    const r = new UidRanges(f, 1_000_000);
    const slot = r.reserve();
    r.release(slot);
    expect(r.hostIdFor('a')).toBe(1_000_000 + slot * RANGE_SIZE);
    expect(() => r.assign('b', slot)).toThrow(/not reserved/);
  });

  it('stops when the uid space is used up', () => {
    const r = new UidRanges(file(), 2 ** 32 - 2 * RANGE_SIZE);
    r.hostIdFor('a');
    expect(() => r.hostIdFor('b')).toThrow(/no free uid range/);
  });

  it('gives no range to a name the API would refuse (../relesc), for a function or a stem cell', () => {
    const f = file();
    const r = new UidRanges(f, 1_000_000);
    expect(() => r.hostIdFor('../relesc')).toThrow(/not a function name/);
    expect(() => r.assign('Echo', r.reserve())).toThrow(/not a function name/);
    expect(r.slotOf('../relesc')).toBeUndefined();
    expect(existsSync(f) ? Object.keys(JSON.parse(readFileSync(f, 'utf8')) as object) : []).toEqual([]);
    expect(r.hostIdFor('echo')).toBe(1_000_000 + RANGE_SIZE); // slot 0 is still the stem cell's
  });
});
