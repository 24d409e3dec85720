import { constants } from 'node:fs';
import { chmod, lchown, link, lutimes, mkdir, open, readdir, symlink, utimes } from 'node:fs/promises';
import type { Header as TarHeader } from 'tar-stream';
import { entryComponents } from './entry-path.js';
import { unsafe } from './errors.js';
import type { Budget } from './limits.js';
import type { Tree } from './tree.js';

/** tar-stream's header as it really arrives: unknown type flags are null, pax records are strings. */
export type Header = Omit<TarHeader, 'pax' | 'type' | 'linkname'> & {
  type: TarHeader['type'] | null;
  linkname: string | null;
  pax?: Record<string, string> | null;
};
type EntryStream = AsyncIterable<Buffer>;

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
const MAX_ID = 2 ** 31;
const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** chown only works as root; elsewhere (tests on a laptop) ownership stays the caller's. */
const CAN_CHOWN = process.getuid?.() === 0;

export interface LayerCounts {
  entries: number;
  /** Device nodes and FIFOs skipped. */
  dropped: number;
}

async function drain(stream: EntryStream): Promise<void> {
  for await (const chunk of stream) void chunk;
}

/** uid/gid from the header or a pax record; anything but a small non-negative integer is refused. */
function ownerId(header: Header, key: 'uid' | 'gid'): number {
  const pax = header.pax?.[key];
  let id: number;
  if (pax !== undefined) {
    if (!/^[0-9]{1,20}$/.test(pax)) throw unsafe(`${JSON.stringify(header.name)}: pax ${key} ${JSON.stringify(pax)} is not a number`);
    id = Number(pax);
  } else {
    id = header[key] ?? 0;
  }
  if (!Number.isInteger(id) || id < 0 || id >= MAX_ID) {
    throw unsafe(`${JSON.stringify(header.name)}: ${key} ${String(id)} is out of range (0 to 2^31-1)`);
  }
  return id;
}

/** Permission bits to apply: setuid/setgid always go, sticky stays on directories only. */
function permissions(header: Header, dir: boolean): number {
  const mode = Number.isInteger(header.mode) ? header.mode : 0;
  return mode & (dir ? 0o1777 : 0o777);
}

function mtimeOf(header: Header): Date | undefined {
  const t = header.mtime?.getTime() as number | undefined;
  return t !== undefined && Number.isFinite(t) && t >= 0 ? header.mtime : undefined;
}

/**
 * Applies the entries of one layer, in order, to the tree. Device nodes and FIFOs are
 * dropped on purpose: a function never needs one from its image (the runtime provides
 * /dev), and creating them would hand the container raw device access.
 */
export class LayerApplier {
  readonly counts: LayerCounts = { entries: 0, dropped: 0 };
  /** Paths this layer wrote (or created as parents), so an opaque whiteout spares them. */
  private readonly touched = new Set<string>();
  /** Directories whose final mode and mtime are applied when the layer ends. */
  private readonly dirs: Array<{ components: string[]; mode: number; mtime: Date | undefined }> = [];
  /** The entry being applied, awaited before the tree is removed after a failure. */
  private current: Promise<void> = Promise.resolve();

  constructor(private readonly tree: Tree, private readonly budget: Budget) {}

  entry(header: Header, stream: EntryStream): Promise<void> {
    const run = this.apply(header, stream);
    this.current = run.catch(() => undefined);
    return run;
  }

  settled(): Promise<void> {
    return this.current;
  }

  private touch(components: string[]): void {
    this.touched.add(components.join('/'));
  }

  private async apply(header: Header, stream: EntryStream): Promise<void> {
    const name = header.name;
    this.budget.addEntry(name);
    this.counts.entries += 1;
    const components = entryComponents(name);
    this.budget.checkPath(name, components.length);
    const base = components[components.length - 1];

    if (base !== undefined && base.startsWith(WHITEOUT)) {
      await drain(stream);
      return this.whiteout(name, components, base);
    }
    switch (header.type) {
      case 'file':
      case 'contiguous-file':
        return this.file(header, components, stream);
      case 'directory':
        await drain(stream);
        return this.directory(header, components);
      case 'symlink':
        await drain(stream);
        return this.symlink(header, components);
      case 'link':
        await drain(stream);
        return this.hardlink(header, components);
      case 'character-device':
      case 'block-device':
      case 'fifo':
        await drain(stream);
        this.counts.dropped += 1;
        return;
      default:
        throw unsafe(`${JSON.stringify(name)} has unsupported tar entry type ${String(header.type)}`);
    }
  }

  /** Parents checked (and created), then whatever sits at the path cleared. */
  private async prepare(header: Header, components: string[], keepDir: boolean): Promise<'dir' | 'none'> {
    await this.tree.parents(components, true, header.name);
    // The entry and every directory above it now hold content of this layer.
    for (let i = 1; i <= components.length; i++) this.touch(components.slice(0, i));
    return this.tree.clear(components, keepDir);
  }

  private async own(header: Header, path: string): Promise<void> {
    const uid = ownerId(header, 'uid');
    const gid = ownerId(header, 'gid');
    if (CAN_CHOWN) await lchown(path, uid, gid);
  }

  private async file(header: Header, components: string[], stream: EntryStream): Promise<void> {
    if (components.length === 0) throw unsafe(`${JSON.stringify(header.name)}: a file cannot replace the image root`);
    ownerId(header, 'uid'); // refuse bad ids before writing any data
    ownerId(header, 'gid');
    await this.prepare(header, components, false);
    const path = this.tree.abs(components);
    // O_EXCL|O_NOFOLLOW: the path was just cleared, so this creates a new inode and never
    // writes through a symlink or into a file hard-linked from elsewhere.
    const fh = await open(path, WRITE_FLAGS, 0o600);
    try {
      for await (const chunk of stream) {
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      }
      if (CAN_CHOWN) await fh.chown(ownerId(header, 'uid'), ownerId(header, 'gid'));
      // After chown, which would clear set-id bits anyway; we never set them.
      await fh.chmod(permissions(header, false));
    } finally {
      await fh.close();
    }
    const mtime = mtimeOf(header);
    if (mtime) await lutimes(path, mtime, mtime);
  }

  private async directory(header: Header, components: string[]): Promise<void> {
    // The root's own entry ("./") is ignored: the root is always root-owned 0755.
    if (components.length === 0) return;
    const kept = await this.prepare(header, components, true);
    const path = this.tree.abs(components);
    if (kept === 'none') await mkdir(path, { mode: 0o755 });
    await this.own(header, path);
    this.dirs.push({ components, mode: permissions(header, true), mtime: mtimeOf(header) });
  }

  private async symlink(header: Header, components: string[]): Promise<void> {
    if (components.length === 0) throw unsafe(`symlink entry ${JSON.stringify(header.name)} would replace the image root`);
    const target = header.linkname ?? '';
    if (target === '' || target.includes('\0')) throw unsafe(`symlink ${JSON.stringify(header.name)} has an empty or NUL-bearing target`);
    this.budget.checkPath(target, 0, 'symlink target');
    await this.prepare(header, components, false);
    const path = this.tree.abs(components);
    // The target is only data: it is stored, never resolved while unpacking.
    await symlink(target, path);
    await this.own(header, path);
    const mtime = mtimeOf(header);
    if (mtime) await lutimes(path, mtime, mtime);
  }

  private async hardlink(header: Header, components: string[]): Promise<void> {
    const name = JSON.stringify(header.name);
    if (components.length === 0) throw unsafe(`hardlink entry ${name} would replace the image root`);
    const linkname = header.linkname ?? '';
    this.budget.checkPath(linkname, 0, 'hardlink target');
    const target = entryComponents(linkname, `hardlink ${name} target`);
    if (target.length === 0) throw unsafe(`hardlink ${name} points at the image root`);
    if (target.join('/') === components.join('/')) throw unsafe(`hardlink ${name} points at itself`);
    await this.prepare(header, components, false);
    // Checked after clearing our own path, which might have held the target.
    await this.tree.parents(target, false, linkname);
    const st = await this.tree.lstat(target);
    if (!st?.isFile()) throw unsafe(`hardlink ${name} target ${JSON.stringify(linkname)} is not a regular file in the image`);
    await link(this.tree.abs(target), this.tree.abs(components));
  }

  private async whiteout(name: string, components: string[], base: string): Promise<void> {
    const dir = components.slice(0, -1);
    if (base === OPAQUE) {
      if (!(await this.tree.parents(components, false, name))) return;
      const st = await this.tree.lstat(dir);
      if (st?.isSymbolicLink()) throw unsafe(`opaque whiteout ${JSON.stringify(name)} names a symlinked directory`);
      if (st?.isDirectory()) await this.prune(dir);
      return;
    }
    const victim = base.slice(WHITEOUT.length);
    // ".wh..wh.*" other than the opaque marker is aufs bookkeeping; it removes nothing.
    if (victim.startsWith(WHITEOUT)) return;
    if (victim === '' || victim === '.' || victim === '..') throw unsafe(`whiteout ${JSON.stringify(name)} names no entry`);
    const target = [...dir, victim];
    if (!(await this.tree.parents(target, false, name))) return;
    await this.tree.remove(target);
  }

  /** Removes what lower layers put under `dir`, keeping what this layer already wrote there. */
  private async prune(dir: string[]): Promise<void> {
    for (const child of await readdir(this.tree.abs(dir))) {
      const c = [...dir, child];
      if (!this.touched.has(c.join('/'))) await this.tree.remove(c);
      else if ((await this.tree.lstat(c))?.isDirectory()) await this.prune(c);
    }
  }

  /** Final directory modes, deepest and latest first, so a read-only directory never blocked a write. */
  async finish(): Promise<void> {
    for (const d of [...this.dirs].reverse()) {
      // A later entry may have replaced the directory (or a parent) with something else.
      if (!(await this.tree.parentsAreDirs(d.components))) continue;
      const st = await this.tree.lstat(d.components);
      if (!st?.isDirectory()) continue;
      const path = this.tree.abs(d.components);
      await chmod(path, d.mode);
      if (d.mtime) await utimes(path, d.mtime, d.mtime);
    }
  }
}
