import { describe, expect, it } from 'vitest';
import { LineSplitter } from './lines.js';

const split = (max: number, chunks: string[]) => {
  const out: string[] = [];
  const s = new LineSplitter(max, (l) => out.push(l));
  for (const c of chunks) s.push(Buffer.from(c));
  s.end();
  return out;
};

describe('LineSplitter', () => {
  it('splits lines across chunks and keeps a last line without a newline', () => {
    expect(split(100, ['a\nb', 'c\n\nd'])).toEqual(['a', 'bc', 'd']);
  });

  it('cuts a line at its limit and says how many bytes it cut', () => {
    expect(split(4, ['abcdef', 'gh\nxy\n', '0123456789'])).toEqual(['abcd [cut: 4 more bytes]', 'xy', '0123 [cut: 6 more bytes]']);
  });

  it('keeps no more than its limit of a line that never ends', () => {
    const out: string[] = [];
    const s = new LineSplitter(16, (l) => out.push(l));
    const chunk = Buffer.alloc(64 * 1024, 0x78);
    for (let i = 0; i < 160; i++) s.push(chunk);
    expect(out).toEqual([]);
    s.push(Buffer.from('\n'));
    expect(out).toEqual([`${'x'.repeat(16)} [cut: ${160 * 64 * 1024 - 16} more bytes]`]);
  });
});
