import { describe, expect, it } from 'vitest';
import { FrameDecoder, FrameError, encodeFrame } from './frames.js';
import { MAX_HEADER_BYTES, runtimeMessage, workerMessage } from './messages.js';

const join = (bufs: Buffer[]) => Buffer.concat(bufs);

function prefix(headerLen: number, bodyLen: number, bytes = [0x53, 0x4b, 1, 0]): Buffer {
  const b = Buffer.alloc(12);
  b.set(bytes, 0);
  b.writeUInt32BE(headerLen, 4);
  b.writeUInt32BE(bodyLen, 8);
  return b;
}

function rawFrame(header: string, body = Buffer.alloc(0)): Buffer {
  const h = Buffer.from(header);
  return Buffer.concat([prefix(h.length, body.length), h, body]);
}

function errorOf(fn: () => unknown): FrameError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FrameError);
    return err as FrameError;
  }
  throw new Error('expected a FrameError');
}

describe('encodeFrame', () => {
  it('writes the fixed prefix, the JSON header and the body', () => {
    const frame = join(encodeFrame({ type: 'result', id: 'a', contentType: 'text/plain' }, Buffer.from('hi')));
    const header = JSON.stringify({ type: 'result', id: 'a', contentType: 'text/plain' });
    expect([...frame.subarray(0, 4)]).toEqual([0x53, 0x4b, 1, 0]);
    expect(frame.readUInt32BE(4)).toBe(header.length);
    expect(frame.readUInt32BE(8)).toBe(2);
    expect(frame.subarray(12, 12 + header.length).toString()).toBe(header);
    expect(frame.subarray(12 + header.length).toString()).toBe('hi');
  });

  it('keeps a large body as its own buffer (no copy) and inlines a small one', () => {
    const big = Buffer.alloc(100_000, 7);
    const parts = encodeFrame({ type: 'shutdown' }, big);
    expect(parts).toHaveLength(2);
    expect(parts[1]).toBe(big);
    expect(encodeFrame({ type: 'shutdown' }, Buffer.alloc(10))).toHaveLength(1);
    const view = new Uint8Array(new ArrayBuffer(10_000), 100, 5000);
    const [, body] = encodeFrame({ type: 'shutdown' }, view);
    expect(body!.buffer).toBe(view.buffer);
    expect(body!.byteOffset).toBe(100);
  });

  it('counts header bytes in UTF-8, not characters', () => {
    const parts = encodeFrame({ type: 'error', id: 'é', code: 'FN_ERROR', message: 'naïve ✓' });
    const [frame] = new FrameDecoder(runtimeMessage).push(join(parts));
    expect(frame!.header).toEqual({ type: 'error', id: 'é', code: 'FN_ERROR', message: 'naïve ✓' });
  });

  it('refuses an oversized header or body', () => {
    expect(errorOf(() => encodeFrame({ type: 'error', message: 'x'.repeat(MAX_HEADER_BYTES) })).code).toBe('HEADER_TOO_LARGE');
    expect(errorOf(() => encodeFrame({ type: 'shutdown' }, Buffer.alloc(11), 10)).code).toBe('BODY_TOO_LARGE');
  });
});

describe('FrameDecoder', () => {
  const frames = [
    join(encodeFrame({ type: 'ready', protocol: 1, runtime: 'node' })),
    join(encodeFrame({ type: 'result', id: 'inv-1', contentType: 'application/json' }, Buffer.from('{"ok":true}'))),
    join(encodeFrame({ type: 'error', id: 'inv-2', code: 'FN_ERROR', message: 'boom', stack: 'Error: boom' })),
    join(encodeFrame({ type: 'result', id: 'inv-3' }, Buffer.alloc(5000, 0xab))),
  ];
  const stream = Buffer.concat(frames);
  const expected = [
    { header: { type: 'ready', protocol: 1, runtime: 'node' }, body: '' },
    { header: { type: 'result', id: 'inv-1', contentType: 'application/json' }, body: '{"ok":true}' },
    { header: { type: 'error', id: 'inv-2', code: 'FN_ERROR', message: 'boom', stack: 'Error: boom' }, body: '' },
    { header: { type: 'result', id: 'inv-3' }, body: Buffer.alloc(5000, 0xab).toString('hex') },
  ];
  const view = (fs: { header: unknown; body: Buffer }[]) =>
    fs.map((f, i) => ({ header: f.header, body: i === 3 ? f.body.toString('hex') : f.body.toString() }));

  it('decodes several frames from one chunk, bodies as views of it', () => {
    const out = new FrameDecoder(runtimeMessage).push(stream);
    expect(view(out)).toEqual(expected);
    expect(out[1]!.body.buffer).toBe(stream.buffer);
  });

  it('decodes a stream split at every byte boundary', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const d = new FrameDecoder(runtimeMessage);
      const out = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
      expect(view(out), `cut at ${cut}`).toEqual(expected);
      expect(d.pending).toBe(0);
    }
  });

  it('decodes a stream split at every pair of boundaries in the first frames', () => {
    const head = Buffer.concat(frames.slice(0, 3));
    for (let a = 0; a <= head.length; a++) {
      for (let b = a; b <= head.length; b += 3) {
        const d = new FrameDecoder(runtimeMessage);
        const out = [...d.push(head.subarray(0, a)), ...d.push(head.subarray(a, b)), ...d.push(head.subarray(b))];
        expect(out.map((f) => f.header)).toEqual(expected.slice(0, 3).map((e) => e.header));
      }
    }
  });

  it('decodes a stream fed one byte at a time', () => {
    const d = new FrameDecoder(runtimeMessage);
    const out = [];
    for (let i = 0; i < stream.length; i++) out.push(...d.push(stream.subarray(i, i + 1)));
    expect(view(out)).toEqual(expected);
  });

  it('parses headers into the message union and drops unknown fields', () => {
    const [f] = new FrameDecoder(workerMessage).push(rawFrame('{"type":"invoke","id":"x","deadline":5,"future":1}'));
    expect(f!.header).toEqual({ type: 'invoke', id: 'x', deadline: 5 });
  });

  it('rejects a bad magic, version or flags as soon as the prefix is in', () => {
    const d1 = new FrameDecoder(runtimeMessage);
    expect(errorOf(() => d1.push(Buffer.from('HTTP/1.1 200 OK\r\n'))).code).toBe('BAD_MAGIC');
    expect(errorOf(() => new FrameDecoder(runtimeMessage).push(prefix(2, 0, [0x53, 0x4b, 2, 0]))).code).toBe('BAD_VERSION');
    expect(errorOf(() => new FrameDecoder(runtimeMessage).push(prefix(2, 0, [0x53, 0x4b, 1, 1]))).code).toBe('BAD_FLAGS');
  });

  it('rejects oversized headers and bodies before buffering them', () => {
    expect(errorOf(() => new FrameDecoder(runtimeMessage).push(prefix(MAX_HEADER_BYTES + 1, 0))).code).toBe('HEADER_TOO_LARGE');
    expect(errorOf(() => new FrameDecoder(runtimeMessage, { maxHeaderBytes: 100 }).push(prefix(101, 0))).code).toBe('HEADER_TOO_LARGE');
    const d = new FrameDecoder(runtimeMessage, { maxBodyBytes: 1024 });
    expect(errorOf(() => d.push(prefix(20, 1025))).code).toBe('BODY_TOO_LARGE');
    expect(errorOf(() => new FrameDecoder(runtimeMessage).push(prefix(20, 0xffff_ffff))).code).toBe('BODY_TOO_LARGE');
  });

  it('rejects headers that are empty, not JSON, or not a known message', () => {
    const bad = (s: string) => errorOf(() => new FrameDecoder(runtimeMessage).push(rawFrame(s)));
    expect(errorOf(() => new FrameDecoder(runtimeMessage).push(prefix(0, 0))).code).toBe('BAD_HEADER');
    expect(bad('{"type":').code).toBe('BAD_HEADER');
    expect(bad('[1,2]').code).toBe('BAD_HEADER');
    expect(bad('{"type":"invoke","id":"a","deadline":1}').code).toBe('BAD_HEADER'); // a worker message, not a runtime one
    expect(bad('{"type":"result"}').message).toMatch(/id/);
    expect(bad('{"type":"error","id":"a","code":"lower case","message":"m"}').code).toBe('BAD_HEADER');
  });

  it('stays failed after an error', () => {
    const d = new FrameDecoder(runtimeMessage);
    const first = errorOf(() => d.push(Buffer.from('garbage-garbage')));
    expect(errorOf(() => d.push(frames[0]!))).toBe(first);
  });
});
