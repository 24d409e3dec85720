import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { Inflater } from './inflate.js';

/** Inflates `gz` pushed `step` bytes at a time; returns the output and the pieces' buffers. */
function inflate(gz: Buffer, step: number, outSize = 4096): { out: Buffer; buffers: Set<ArrayBufferLike> } {
  const pieces: Buffer[] = [];
  const buffers = new Set<ArrayBufferLike>();
  const inflater = new Inflater('test', outSize, (piece) => {
    expect(piece.length).toBeLessThanOrEqual(outSize);
    buffers.add(piece.buffer);
    pieces.push(Buffer.from(piece)); // the piece is only valid during the call
  });
  try {
    for (let i = 0; i < gz.length; i += step) inflater.write(gz.subarray(i, i + step));
    inflater.end();
  } finally {
    inflater.close();
  }
  return { out: Buffer.concat(pieces), buffers };
}

describe('Inflater', () => {
  // Half random (incompressible), half repetitive (expands a lot per input byte).
  const data = Buffer.concat([randomBytes(100_000), Buffer.alloc(400_000, 'abc')]);
  const gz = gzipSync(data);

  it('gives back exactly the original bytes, whatever the input pieces', () => {
    for (const step of [1, 1000, 65_536, gz.length]) expect(inflate(gz, step).out.equals(data)).toBe(true);
  });

  it('hands every piece out of one reused buffer', () => {
    const { buffers } = inflate(gz, 65_536);
    expect(buffers.size).toBe(1);
  });

  it('reads on through concatenated gzip members, as gunzip does', () => {
    const two = Buffer.concat([gzipSync('first '), gzipSync('second')]);
    expect(inflate(two, 5).out.toString()).toBe('first second');
  });

  it('ignores zero padding after the stream', () => {
    expect(inflate(Buffer.concat([gzipSync('padded'), Buffer.alloc(1024)]), 100).out.toString()).toBe('padded');
  });

  it('refuses garbage after the stream', () => {
    expect(() => inflate(Buffer.concat([gzipSync('x'), Buffer.from('trailing garbage')]), 100)).toThrow(/gzip data is corrupt/);
  });

  it('refuses a stream cut short', () => {
    expect(() => inflate(gz.subarray(0, gz.length - 100), 4096)).toThrow(/gzip data is corrupt \(unexpected end of file\)/);
  });

  it('refuses data that is not gzip', () => {
    expect(() => inflate(Buffer.from('not gzip at all'), 100)).toThrow(/gzip data is corrupt/);
  });
});
