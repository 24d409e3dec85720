import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
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

  it('stops when the uid space is used up', () => {
    const r = new UidRanges(file(), 2 ** 32 - 2 * RANGE_SIZE);
    r.hostIdFor('a');
    expect(() => r.hostIdFor('b')).toThrow(/no free uid range/);
  });
});
