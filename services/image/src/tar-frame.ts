import { Transform, type TransformCallback } from 'node:stream';
import { invalid } from './errors.js';

const BLOCK = 512;
/** Pax and GNU long-name records are read whole; tar-stream caps them at 1 MiB too. */
const MAX_META = 1024 * 1024;
/** Types that carry no data; a size on them is read differently by different tar readers. */
const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);

function isZero(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** An octal or base-256 numeric field, read as tar-stream reads it. */
function numeric(field: Buffer): number {
  if ((field[0] as number) & 0x80) {
    if (field[0] !== 0x80) return -1;
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + (field[i] as number);
    return n;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}

/** The `size` record of a pax header, if any. */
function paxSize(data: Buffer): number | undefined {
  let size: number | undefined;
  for (const line of data.toString('utf8').split('\n')) {
    const m = /^\d+ size=(\d+)$/.exec(line);
    if (m) size = Number(m[1]);
  }
  return size;
}

/**
 * Walks the tar's block structure in front of the parser and forwards bytes only up to the
 * end-of-archive marker (the first all-zero header block). tar-stream skips zero blocks and
 * keeps reading, so without this, entries hidden after the marker would be applied although
 * other readers (Go's archive/tar, GNU tar, umoci) never see them. Anything but zero padding
 * after the marker is refused, as is a data size on an entry type that has no data.
 */
export class TarFrame extends Transform {
  private pending: Buffer = Buffer.alloc(0);
  /** Data bytes (padded to blocks) still to pass before the next header. */
  private dataLeft = 0;
  /** Bytes of a pax/GNU record being collected, when the current data is one. */
  private meta: Buffer[] | undefined;
  private metaType = '';
  private metaSize = 0;
  private nextSize: number | undefined;
  private ended = false;
  private offset = 0;

  constructor(private readonly label: string) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.consume(chunk);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  private consume(chunk: Buffer): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (buf.length > 0) {
      if (this.ended) {
        if (!isZero(buf)) throw invalid(`${this.label}: data after the tar end-of-archive marker (at byte ${this.offset})`);
        this.offset += buf.length;
        return;
      }
      if (this.dataLeft > 0) {
        const n = Math.min(this.dataLeft, buf.length);
        const part = buf.subarray(0, n);
        this.meta?.push(part);
        this.push(part);
        this.dataLeft -= n;
        this.offset += n;
        buf = buf.subarray(n);
        if (this.dataLeft === 0 && this.meta) this.endMeta();
        continue;
      }
      if (buf.length < BLOCK) {
        this.pending = Buffer.from(buf);
        return;
      }
      const header = buf.subarray(0, BLOCK);
      buf = buf.subarray(BLOCK);
      if (isZero(header)) {
        this.ended = true;
        this.offset += BLOCK;
        // Hand the parser the usual two zero blocks so it ends cleanly; the rest is checked above.
        this.push(Buffer.alloc(2 * BLOCK));
        continue;
      }
      this.header(header);
      this.push(header);
      this.offset += BLOCK;
    }
  }

  private header(block: Buffer): void {
    const type = String.fromCharCode(block[156] as number);
    const name = block.subarray(0, 100).toString('latin1').replace(/\0.*$/s, '');
    let size = numeric(block.subarray(124, 136));
    if (!Number.isSafeInteger(size) || size < 0) throw invalid(`${this.label}: tar header at byte ${this.offset} has an unreadable size`);
    const isMeta = type === 'x' || type === 'g' || type === 'L' || type === 'K';
    if (!isMeta) {
      if (this.nextSize !== undefined) size = this.nextSize;
      this.nextSize = undefined;
      const dirByName = (type === '0' || type === '\0') && name.endsWith('/');
      if ((HEADER_ONLY.has(type) || dirByName) && size !== 0) {
        throw invalid(`${this.label}: tar entry ${JSON.stringify(name)} of type ${JSON.stringify(type)} declares ${size} data bytes`);
      }
    } else {
      if (size > MAX_META) throw invalid(`${this.label}: tar ${type} record at byte ${this.offset} is over ${MAX_META} bytes`);
      this.meta = [];
      this.metaType = type;
      this.metaSize = size;
    }
    this.dataLeft = Math.ceil(size / BLOCK) * BLOCK;
    if (isMeta && this.dataLeft === 0) this.endMeta();
  }

  private endMeta(): void {
    const data = Buffer.concat(this.meta ?? []).subarray(0, this.metaSize);
    this.meta = undefined;
    const s = this.metaType === 'x' || this.metaType === 'g' ? paxSize(data) : undefined;
    if (s === undefined) return;
    // A global size record would silently resize later entries in some readers only.
    if (this.metaType === 'g') throw invalid(`${this.label}: pax global header sets a size`);
    this.nextSize = s;
  }

  override _flush(cb: TransformCallback): void {
    // A stream ending mid-block or mid-entry is left to the parser, which reports it.
    if (this.pending.length) this.push(this.pending);
    cb();
  }
}
