import { invalid } from './errors.js';

const BLOCK = 512;
/** Pax and GNU long-name records are read whole, so their size is capped. */
const MAX_META = 1024 * 1024;
/** Types that carry no data; a size on them is read differently by different tar readers. */
const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);
const TYPES: Record<string, TarType> = {
  '0': 'file',
  '\0': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
  '7': 'contiguous-file',
};
const USTAR = Buffer.from('ustar\0', 'latin1');
const GNU = Buffer.from('ustar  \0', 'latin1');

export type TarType = 'file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo' | 'contiguous-file';

export interface TarHeader {
  name: string;
  /** null for a type flag no one here knows (the applier refuses the entry). */
  type: TarType | null;
  /** The raw type flag, for messages. */
  flag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  linkname: string | null;
  /** The entry's own pax records (path, linkpath, size, uid, gid, …), if it had any. */
  pax: Record<string, string> | null;
}

/** Receives a tar's entries in order; the data of an entry arrives between begin and end. */
export interface TarHandler {
  begin(header: TarHeader): void;
  /** A piece of the current entry's data; only valid until this returns. */
  data(chunk: Buffer): void;
  end(): void;
}

function isZero(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

function text(block: Buffer, start: number, length: number): string {
  const field = block.subarray(start, start + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul === -1 ? field.length : nul).toString('utf8');
}

/** An octal field (space or NUL terminated, maybe space-led) or a base-256 one; NaN if unreadable. */
function numeric(block: Buffer, start: number, length: number): number {
  const field = block.subarray(start, start + length);
  if ((field[0] as number) & 0x80) {
    if (field[0] !== 0x80) return NaN; // negative base-256
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + (field[i] as number);
    return n;
  }
  // Leading spaces or NULs, octal digits, then a terminator (space or NUL) or the field's end.
  let i = 0;
  while (i < field.length && (field[i] === 0x20 || field[i] === 0)) i++;
  let j = i;
  while (j < field.length && (field[j] as number) >= 0x30 && (field[j] as number) <= 0x37) j++;
  if (j < field.length && field[j] !== 0x20 && field[j] !== 0) return NaN;
  return j === i ? 0 : parseInt(field.toString('latin1', i, j), 8);
}

function checksum(block: Buffer): number {
  let sum = 8 * 32; // the checksum field itself counts as spaces
  for (let i = 0; i < 148; i++) sum += block[i] as number;
  for (let i = 156; i < BLOCK; i++) sum += block[i] as number;
  return sum;
}

/** pax records: "<length> <key>=<value>\n", one after another. */
function paxRecords(data: Buffer, label: string): Record<string, string> {
  const records: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    if (data[at] === 0) break; // NUL padding
    const space = data.indexOf(0x20, at);
    const length = space === -1 ? NaN : Number(data.subarray(at, space).toString('latin1'));
    if (!Number.isSafeInteger(length) || length <= space - at || at + length > data.length || data[at + length - 1] !== 0x0a) {
      throw invalid(`${label}: malformed pax record at offset ${at}`);
    }
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq <= 0) throw invalid(`${label}: malformed pax record ${JSON.stringify(record.slice(0, 80))}`);
    records[record.slice(0, eq)] = record.slice(eq + 1);
    at += length;
  }
  return records;
}

/**
 * A synchronous tar parser: bytes are pushed in, entries come out through the handler with
 * their data as slices of what was pushed (no copies). It checks every header's checksum and
 * format, and stops at the end-of-archive marker (the first all-zero header block): what
 * follows must be zero padding, so entries hidden behind the marker are refused, not
 * applied, as Go's archive/tar (umoci) and GNU tar never see them either. A data size on an
 * entry type that has none is refused too, since readers disagree on whether to skip it.
 */
export class TarReader {
  /** A header or meta record split across pushes. */
  private partial: Buffer | undefined;
  private partialWanted = 0;
  /** Data bytes of the current entry still to come, then its padding. */
  private dataLeft = 0;
  private padLeft = 0;
  private inEntry = false;
  /** A pax or GNU record being read: its type and size. */
  private meta: { type: string; size: number } | undefined;
  private pax: Record<string, string> | null = null;
  private longName: string | undefined;
  private longLink: string | undefined;
  private ended = false;
  private offset = 0;

  constructor(
    private readonly label: string,
    private readonly handler: TarHandler,
  ) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    while (buf.length > 0) {
      if (this.ended) {
        if (!isZero(buf)) throw invalid(`${this.label}: data after the tar end-of-archive marker (at byte ${this.offset})`);
        this.offset += buf.length;
        return;
      }
      if (this.dataLeft > 0) {
        const n = Math.min(this.dataLeft, buf.length);
        this.handler.data(buf.subarray(0, n));
        buf = this.skip(buf, n);
        this.dataLeft -= n;
        if (this.dataLeft === 0) this.endEntry();
        continue;
      }
      if (this.padLeft > 0) {
        const n = Math.min(this.padLeft, buf.length);
        buf = this.skip(buf, n);
        this.padLeft -= n;
        continue;
      }
      // A header block, or a whole meta record, gathered across pushes when split.
      const wanted = this.meta ? Math.ceil(this.meta.size / BLOCK) * BLOCK : BLOCK;
      let block: Buffer;
      if (this.partial === undefined && buf.length >= wanted) {
        block = buf.subarray(0, wanted);
        buf = this.skip(buf, wanted);
      } else {
        if (this.partial === undefined) {
          this.partial = Buffer.allocUnsafe(wanted);
          this.partialWanted = 0;
        }
        const n = Math.min(wanted - this.partialWanted, buf.length);
        buf.copy(this.partial, this.partialWanted, 0, n);
        this.partialWanted += n;
        buf = this.skip(buf, n);
        if (this.partialWanted < wanted) return;
        block = this.partial;
        this.partial = undefined;
      }
      if (this.meta) this.endMeta(block);
      else this.header(block);
    }
  }

  /** The tar stream is over; an entry or record cut short is an error. */
  end(): void {
    if (this.dataLeft > 0 || this.padLeft > 0 || this.partial !== undefined || this.meta) {
      throw invalid(`${this.label}: the tar stream ends in the middle of an entry (at byte ${this.offset})`);
    }
  }

  private skip(buf: Buffer, n: number): Buffer {
    this.offset += n;
    return buf.subarray(n);
  }

  private header(block: Buffer): void {
    const at = this.offset - BLOCK;
    if (isZero(block)) {
      this.ended = true;
      return;
    }
    const stored = numeric(block, 148, 8);
    if (stored !== checksum(block)) throw invalid(`${this.label}: tar header at byte ${at} has a bad checksum (corrupt, or not a tar)`);
    const magic = block.subarray(257, 263);
    const ustar = magic.equals(USTAR);
    if (!ustar && !block.subarray(257, 265).equals(GNU)) throw invalid(`${this.label}: tar header at byte ${at} is in an unknown format`);
    const flag = String.fromCharCode(block[156] as number);
    let size = numeric(block, 124, 12);
    if (!Number.isSafeInteger(size) || size < 0) throw invalid(`${this.label}: tar header at byte ${at} has an unreadable size`);

    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_META) throw invalid(`${this.label}: tar ${flag} record at byte ${at} is over ${MAX_META} bytes`);
      this.meta = { type: flag, size };
      if (size === 0) this.endMeta(Buffer.alloc(0));
      return;
    }

    let name = text(block, 0, 100);
    if (ustar && block[345] !== 0) name = `${text(block, 345, 155)}/${name}`;
    let linkname = block[157] === 0 ? null : text(block, 157, 100);
    let type = TYPES[flag] ?? null;
    // Old tars mark directories with a trailing slash on a plain file entry.
    if (type === 'file' && name.endsWith('/')) type = 'directory';
    const pax = this.pax;
    if (this.longName !== undefined) name = this.longName;
    if (this.longLink !== undefined) linkname = this.longLink;
    if (pax?.path !== undefined) name = pax.path;
    if (pax?.linkpath !== undefined) linkname = pax.linkpath;
    if (pax?.size !== undefined) {
      size = /^[0-9]{1,16}$/.test(pax.size) ? Number(pax.size) : NaN;
      if (!Number.isSafeInteger(size)) throw invalid(`${this.label}: tar entry ${JSON.stringify(name)} has an unreadable pax size`);
    }
    this.pax = null;
    this.longName = undefined;
    this.longLink = undefined;
    if ((HEADER_ONLY.has(flag) || type === 'directory') && size !== 0) {
      throw invalid(`${this.label}: tar entry ${JSON.stringify(name)} of type ${JSON.stringify(flag)} declares ${size} data bytes`);
    }
    const header: TarHeader = {
      name,
      type,
      flag,
      mode: numeric(block, 100, 8),
      uid: numeric(block, 108, 8),
      gid: numeric(block, 116, 8),
      size,
      mtime: new Date(1000 * numeric(block, 136, 12)),
      linkname,
      pax,
    };
    this.handler.begin(header);
    this.inEntry = true;
    this.dataLeft = size;
    this.padLeft = (BLOCK - (size % BLOCK)) % BLOCK;
    if (size === 0) this.endEntry();
  }

  private endEntry(): void {
    if (!this.inEntry) return;
    this.inEntry = false;
    this.handler.end();
  }

  private endMeta(record: Buffer): void {
    const { type, size } = this.meta as { type: string; size: number };
    this.meta = undefined;
    const data = record.subarray(0, size);
    if (type === 'L' || type === 'K') {
      const nul = data.indexOf(0);
      const value = data.subarray(0, nul === -1 ? data.length : nul).toString('utf8');
      if (type === 'L') this.longName = value;
      else this.longLink = value;
      return;
    }
    const records = paxRecords(data, this.label);
    if (type === 'x') {
      this.pax = records;
      return;
    }
    // Global records: Go's archive/tar (umoci) hands them to the caller, which ignores them;
    // only a global size is refused, since some readers would resize later entries by it.
    if (records.size !== undefined) throw invalid(`${this.label}: pax global header sets a size`);
  }
}
