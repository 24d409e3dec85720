import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, linkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { TarReader, type TarHeader } from './tar-reader.js';

const root = mkdtempSync(join(tmpdir(), 'skiff-tar-reader-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Seen {
  name: string;
  type: string | null;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname: string | null;
  data: string;
}

/** Entries as TarReader reports them, fed `step` bytes at a time. */
function readAll(tar: Buffer, step: number): Seen[] {
  const seen: Seen[] = [];
  let hash: ReturnType<typeof createHash> | undefined;
  let current: TarHeader | undefined;
  const reader = new TarReader('test', {
    begin(h) {
      current = h;
      hash = createHash('sha256');
    },
    data(chunk) {
      hash?.update(chunk);
    },
    end() {
      const h = current as TarHeader;
      seen.push({ name: h.name, type: h.type, size: h.size, mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime.getTime(), linkname: h.linkname, data: hash?.digest('hex') ?? '' });
    },
  });
  for (let i = 0; i < tar.length; i += step) reader.push(tar.subarray(i, i + step));
  reader.end();
  return seen;
}

/** The same entries as tar-stream reads them (the reader Skiff used before). */
async function readWithTarStream(tar: Buffer): Promise<Seen[]> {
  const seen: Seen[] = [];
  const extract = tarStream.extract();
  extract.on('entry', (h, stream, next) => {
    const hash = createHash('sha256');
    stream.on('data', (c: unknown) => hash.update(c as Buffer));
    stream.on('end', () => {
      seen.push({ name: h.name, type: h.type ?? null, size: h.size ?? 0, mode: h.mode ?? 0, uid: h.uid ?? 0, gid: h.gid ?? 0, mtime: h.mtime?.getTime() ?? 0, linkname: h.linkname ?? null, data: hash.digest('hex') });
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve).on('error', reject);
    Readable.from([tar]).pipe(extract);
  });
  return seen;
}

/** A tree with what real images hold: long names, links, odd modes, owners, big and empty files. */
function gnuTar(format: 'gnu' | 'posix'): Buffer {
  const dir = mkdtempSync(join(root, `${format}-`));
  const long = 'd'.repeat(90);
  mkdirSync(join(dir, long, 'e'.repeat(80)), { recursive: true });
  writeFileSync(join(dir, long, 'e'.repeat(80), `${'f'.repeat(60)}.txt`), 'deep\n');
  writeFileSync(join(dir, 'empty'), '');
  writeFileSync(join(dir, 'big'), Buffer.alloc(300_001, 7));
  writeFileSync(join(dir, 'odd'), 'x', { mode: 0o4751 });
  symlinkSync('../../'.repeat(30) + 'target-far-away', join(dir, 'link'));
  linkSync(join(dir, 'big'), join(dir, 'hard'));
  return execFileSync('tar', ['-c', `--format=${format}`, '--owner=1234', '--group=5678', '--numeric-owner', '-C', dir, '.'], { maxBuffer: 64 * 1024 * 1024 });
}

describe('TarReader', () => {
  for (const format of ['gnu', 'posix'] as const) {
    it(`reads a GNU tar ${format} archive as tar-stream does, whatever the push sizes`, async () => {
      const tar = gnuTar(format);
      const expected = await readWithTarStream(tar);
      expect(expected.map((e) => e.name)).toContain(`./${'d'.repeat(90)}/${'e'.repeat(80)}/${'f'.repeat(60)}.txt`);
      for (const step of [1, 7, 511, 512, 513, 4096, tar.length]) expect(readAll(tar, step)).toEqual(expected);
    });
  }

  it('joins the ustar prefix and name of a long path', async () => {
    const dir = mkdtempSync(join(root, 'ustar-'));
    const long = `${'p'.repeat(60)}/${'q'.repeat(60)}`;
    mkdirSync(join(dir, long), { recursive: true });
    writeFileSync(join(dir, long, 'n.txt'), 'x');
    const tar = execFileSync('tar', ['-c', '--format=ustar', '-C', dir, '.']);
    const seen = readAll(tar, 100);
    expect(seen.map((e) => e.name)).toContain(`./${long}/n.txt`);
    expect(seen).toEqual(await readWithTarStream(tar));
  });

  it('refuses a header whose checksum is wrong', () => {
    const tar = Buffer.from(gnuTar('gnu'));
    tar[0] = (tar[0] as number) ^ 1;
    expect(() => readAll(tar, 512)).toThrow(/bad checksum/);
  });

  it('refuses bytes that are not a tar at all', () => {
    expect(() => readAll(Buffer.alloc(1024, 0x41), 512)).toThrow(/bad checksum/);
  });

  it('refuses a stream that ends inside an entry', () => {
    const tar = gnuTar('gnu');
    expect(() => readAll(tar.subarray(0, tar.indexOf(Buffer.alloc(300, 7)) + 100), 512)).toThrow(/ends in the middle of an entry/);
  });

  it('refuses a malformed pax record', () => {
    const pack = (records: string): Buffer => {
      const header = Buffer.alloc(512);
      header.write('PaxHeaders/x', 0);
      header.write('0000644\0', 100);
      header.write(`${records.length.toString(8).padStart(11, '0')}\0`, 124);
      header.write('x', 156);
      header.write('ustar\0' + '00', 257, 'latin1');
      header.write('        ', 148);
      let sum = 0;
      for (const b of header) sum += b;
      header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
      const body = Buffer.alloc(512);
      body.write(records);
      return Buffer.concat([header, body, Buffer.alloc(1024)]);
    };
    expect(() => readAll(pack('99 path=x\n'), 512)).toThrow(/malformed pax record/);
    expect(() => readAll(pack('7 path\n'), 512)).toThrow(/malformed pax record/);
  });
});
