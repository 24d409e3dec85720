import { chmodSync, closeSync, constants, fchmodSync, fchownSync, fstatSync, futimesSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, readdirSync, symlinkSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { entryComponents } from './entry-path.js';
import { invalid, unsafe } from './errors.js';
import type { Budget } from './limits.js';
import { writeOverlayMarks } from './overlay-marks.js';
import type { TarHandler, TarHeader as Header } from './tar-reader.js';
import type { Tree } from './tree.js';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
const MAX_ID = 2 ** 31;
const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** chown only works as root; elsewhere (tests on a laptop) ownership stays the caller's. */
const CAN_CHOWN = process.getuid?.() === 0;
/** Bits the umask takes from a mode given to open(2); a file created with a mode that has none of them needs no fchmod. */
const UMASK = typeof process.umask === 'function' ? process.umask() : 0o777;

export interface LayerCounts {
  entries: number;
  /** Device nodes and FIFOs skipped. */
  dropped: number;
  /** Bytes of regular file data written. */
  fileBytes: number;
}

/** What an overlay-format layer holds besides plain entries ('/'-joined paths below its root). */
export interface OverlayMarks {
  whiteouts: string[];
  opaques: string[];
  /** Directories created only as parents of entries, with no directory entry of their own. */
  implicitDirs: string[];
  /**
   * The implicit directories that hold nothing but whiteouts or opaque markers. A flat unpack
   * never creates these (a whiteout under a path that is missing or not a directory removes
   * nothing), so composition must hide them where the layers below have no directory there.
   */
  whiteoutDirs: string[];
}

export interface ApplierOptions {
  /**
   * Write the layer on its own in overlayfs format: whiteouts become 0/0 character devices
   * and opaque markers the trusted.overlay.opaque xattr, instead of deleting from the tree.
   */
  overlay?: boolean;
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
  const t = header.mtime.getTime();
  return Number.isFinite(t) && t >= 0 ? header.mtime : undefined;
}

/** A regular file being written: its data arrives in pieces between begin() and end(). */
interface OpenFile {
  fd: number;
  header: Header;
  uid: number;
  gid: number;
  mode: number;
}

/**
 * Applies the entries of one layer, in order, to the tree, synchronously as a TarReader
 * hands them over. Device nodes and FIFOs are dropped on purpose: a function never needs
 * one from its image (the runtime provides /dev), and creating them would hand the
 * container raw device access.
 */
export class LayerApplier implements TarHandler {
  readonly counts: LayerCounts = { entries: 0, dropped: 0, fileBytes: 0 };
  readonly marks: OverlayMarks = { whiteouts: [], opaques: [], implicitDirs: [], whiteoutDirs: [] };
  private readonly overlay: boolean;
  /** Overlay mode: placeholder files standing for whiteouts until finish(), by path, with their inode. */
  private readonly placeholders = new Map<string, number>();
  private readonly opaqueDirs = new Set<string>();
  private readonly explicitDirs = new Set<string>();
  private readonly createdDirs = new Set<string>();
  /** Paths this layer wrote (or created as parents), so an opaque whiteout spares them. */
  private readonly touched = new Set<string>();
  /** Directories whose final mode and mtime are applied when the layer ends. */
  private readonly dirs: Array<{ components: string[]; mode: number; mtime: Date | undefined }> = [];
  private open: OpenFile | undefined;

  constructor(private readonly tree: Tree, private readonly budget: Budget, opts: ApplierOptions = {}) {
    this.overlay = opts.overlay ?? false;
  }

  /** Data of the current entry; only regular files keep theirs. */
  data(chunk: Buffer): void {
    const file = this.open;
    if (!file) return;
    this.counts.fileBytes += chunk.length;
    let off = 0;
    while (off < chunk.length) off += writeSync(file.fd, chunk, off, chunk.length - off);
  }

  end(): void {
    const file = this.open;
    if (!file) return;
    this.open = undefined;
    try {
      if (this.needsChown(file.uid, file.gid)) fchownSync(file.fd, file.uid, file.gid);
      // After chown, which would clear set-id bits anyway; we never set them.
      if ((file.mode & UMASK) !== 0) fchmodSync(file.fd, file.mode);
      const mtime = mtimeOf(file.header);
      if (mtime) futimesSync(file.fd, mtime, mtime);
    } finally {
      closeSync(file.fd);
    }
  }

  /** After a failure: closes a file left half written (the caller removes the tree). */
  abandon(): void {
    if (this.open) closeSync(this.open.fd);
    this.open = undefined;
  }

  /** Marks the entry and every directory above it as holding content of this layer. */
  private touchAll(components: string[]): void {
    let key = '';
    for (const c of components) {
      key = key === '' ? c : `${key}/${c}`;
      this.touched.add(key);
    }
  }

  /** A new entry: applied now, except a regular file's data, which follows through data(). */
  begin(header: Header): void {
    const name = header.name;
    this.budget.addEntry(name);
    this.counts.entries += 1;
    const components = entryComponents(name);
    this.budget.checkPath(name, components.length);
    const base = components[components.length - 1];

    if (base !== undefined && base.startsWith(WHITEOUT)) return this.whiteout(name, components, base);
    switch (header.type) {
      case 'file':
      case 'contiguous-file':
        return this.file(header, components);
      case 'directory':
        return this.directory(header, components);
      case 'symlink':
        return this.symlink(header, components);
      case 'link':
        return this.hardlink(header, components);
      case 'character-device':
      case 'block-device':
      case 'fifo':
        this.counts.dropped += 1;
        return;
      default:
        throw unsafe(`${JSON.stringify(name)} has unsupported tar entry type ${JSON.stringify(header.flag)}`);
    }
  }

  /** Parents checked (and created), then whatever sits at the path cleared. */
  private prepare(header: Header, components: string[], keepDir: boolean): 'dir' | 'none' {
    this.prepareParents(header, components);
    return this.tree.clearSync(components, keepDir);
  }

  /** Parents checked (and created); the path itself is cleared by Tree.create on EEXIST. */
  private prepareParents(header: Header, components: string[]): void {
    this.tree.parentsSync(components, true, header.name, this.onCreate);
    // The entry and every directory above it now hold content of this layer.
    this.touchAll(components);
  }

  private readonly onCreate = (sub: string[]): void => {
    this.createdDirs.add(sub.join('/'));
  };

  private own(header: Header, path: string): void {
    const uid = ownerId(header, 'uid');
    const gid = ownerId(header, 'gid');
    if (this.needsChown(uid, gid)) lchownSync(path, uid, gid);
  }

  /** 0:0 is what root creates anyway (see Tree.createsAsRoot); anything else is chowned when we can. */
  private needsChown(uid: number, gid: number): boolean {
    return CAN_CHOWN && (uid !== 0 || gid !== 0 || !this.tree.createsAsRoot());
  }

  private file(header: Header, components: string[]): void {
    if (components.length === 0) throw unsafe(`${JSON.stringify(header.name)}: a file cannot replace the image root`);
    const uid = ownerId(header, 'uid'); // refuse bad ids before writing any data
    const gid = ownerId(header, 'gid');
    this.prepareParents(header, components);
    const mode = permissions(header, false);
    // O_CREAT|O_EXCL|O_NOFOLLOW: always a new inode, never written through a symlink or into
    // a file hard-linked from elsewhere; whatever was at the path is cleared on EEXIST.
    // Created with its final permission bits (never set-id ones): the tree is private (0700).
    const fd = this.tree.create(components, (p) => openSync(p, WRITE_FLAGS, mode));
    this.open = { fd, header, uid, gid, mode };
  }

  private directory(header: Header, components: string[]): void {
    // The root's own entry ("./") is ignored: the root is always root-owned 0755.
    if (components.length === 0) return;
    this.prepareParents(header, components);
    this.tree.mkdirOrKeep(components);
    const path = this.tree.abs(components);
    this.explicitDirs.add(components.join('/'));
    this.own(header, path);
    this.dirs.push({ components, mode: permissions(header, true), mtime: mtimeOf(header) });
  }

  private symlink(header: Header, components: string[]): void {
    if (components.length === 0) throw unsafe(`symlink entry ${JSON.stringify(header.name)} would replace the image root`);
    const target = header.linkname ?? '';
    if (target === '' || target.includes('\0')) throw unsafe(`symlink ${JSON.stringify(header.name)} has an empty or NUL-bearing target`);
    this.budget.checkPath(target, 0, 'symlink target');
    this.prepareParents(header, components);
    // The target is only data: it is stored, never resolved while unpacking. symlink(2)
    // fails with EEXIST on anything at the path, which is then cleared.
    const path = this.tree.create(components, (p) => {
      symlinkSync(target, p);
      return p;
    });
    this.own(header, path);
    const mtime = mtimeOf(header);
    if (mtime) lutimesSync(path, mtime, mtime);
  }

  private hardlink(header: Header, components: string[]): void {
    const name = JSON.stringify(header.name);
    if (components.length === 0) throw unsafe(`hardlink entry ${name} would replace the image root`);
    const linkname = header.linkname ?? '';
    this.budget.checkPath(linkname, 0, 'hardlink target');
    const target = entryComponents(linkname, `hardlink ${name} target`);
    if (target.length === 0) throw unsafe(`hardlink ${name} points at the image root`);
    if (target.join('/') === components.join('/')) throw unsafe(`hardlink ${name} points at itself`);
    if (this.placeholders.has(target.join('/'))) throw unsafe(`hardlink ${name} points at a whiteout`);
    this.prepare(header, components, false);
    // Checked after clearing our own path, which might have held the target.
    this.tree.parentsSync(target, false, linkname);
    const st = this.tree.lstatSync(target);
    if (!st?.isFile()) {
      // Layers are cached on their own in overlay mode, so a link into a lower layer cannot be made.
      const where = this.overlay ? 'in this layer (links into lower layers are not supported)' : 'in the image';
      throw unsafe(`hardlink ${name} target ${JSON.stringify(linkname)} is not a regular file ${where}`);
    }
    linkSync(this.tree.abs(target), this.tree.abs(components));
  }

  private whiteout(name: string, components: string[], base: string): void {
    const dir = components.slice(0, -1);
    if (this.overlay) return this.overlayWhiteout(name, dir, base);
    if (base === OPAQUE) {
      if (!this.tree.parentsSync(components, false, name, undefined, true)) return;
      const st = this.tree.lstatSync(dir);
      if (st?.isSymbolicLink()) throw unsafe(`opaque whiteout ${JSON.stringify(name)} names a symlinked directory`);
      if (st?.isDirectory()) this.prune(dir);
      return;
    }
    const victim = base.slice(WHITEOUT.length);
    // ".wh..wh.*" other than the opaque marker is aufs bookkeeping; it removes nothing.
    if (victim.startsWith(WHITEOUT)) return;
    if (victim === '' || victim === '.' || victim === '..') throw unsafe(`whiteout ${JSON.stringify(name)} names no entry`);
    const target = [...dir, victim];
    // A whiteout under a path that is no longer a directory has nothing to remove: umoci
    // repack writes "d" (now a file) and then "d/.wh.x" for a directory it replaced.
    if (!this.tree.parentsSync(target, false, name, undefined, true)) return;
    this.tree.removeSync(target);
  }

  /** Overlay mode: the same checks as below, but the deletion is recorded for overlayfs instead of done. */
  private overlayWhiteout(name: string, dir: string[], base: string): void {
    if (base === OPAQUE) {
      if (dir.length === 0) throw invalid(`opaque whiteout ${JSON.stringify(name)} at the image root is not supported`);
      if (!this.tree.parentsSync(dir, true, name, this.onCreate, true)) return;
      const st = this.tree.lstatSync(dir);
      if (st?.isSymbolicLink()) throw unsafe(`opaque whiteout ${JSON.stringify(name)} names a symlinked directory`);
      // This layer put a file there, which hides everything below anyway.
      if (st && !st.isDirectory()) return;
      if (!st) {
        mkdirSync(this.tree.abs(dir), { mode: 0o755 });
        this.tree.markDir(dir);
        this.onCreate(dir);
      }
      this.opaqueDirs.add(dir.join('/'));
      return;
    }
    const victim = base.slice(WHITEOUT.length);
    if (victim.startsWith(WHITEOUT)) return;
    if (victim === '' || victim === '.' || victim === '..') throw unsafe(`whiteout ${JSON.stringify(name)} names no entry`);
    const target = [...dir, victim];
    // As above: this layer replaced a parent with a file, which already hides what was below.
    if (!this.tree.parentsSync(target, true, name, this.onCreate, true)) return;
    this.tree.clearSync(target, false);
    // An empty file holds the place; a later entry at the same path simply replaces it.
    const fd = openSync(this.tree.abs(target), WRITE_FLAGS, 0o000);
    try {
      this.placeholders.set(target.join('/'), fstatSync(fd).ino);
    } finally {
      closeSync(fd);
    }
  }

  /** Overlay mode: turns surviving placeholders into whiteout devices and marks opaque directories. */
  private async writeMarks(): Promise<void> {
    const whiteouts: string[] = [];
    for (const [path, ino] of this.placeholders) {
      const c = path.split('/');
      if (!(await this.tree.parentsAreDirs(c))) continue;
      const st = await this.tree.lstat(c);
      if (!st?.isFile() || st.ino !== ino) continue;
      unlinkSync(this.tree.abs(c));
      whiteouts.push(path);
    }
    const opaques: string[] = [];
    for (const path of this.opaqueDirs) {
      const c = path.split('/');
      if ((await this.tree.parentsAreDirs(c)) && (await this.tree.lstat(c))?.isDirectory()) opaques.push(path);
    }
    await writeOverlayMarks(whiteouts.map((p) => this.tree.abs(p.split('/'))), opaques.map((p) => this.tree.abs(p.split('/'))));
    const implicitDirs: string[] = [];
    for (const path of this.createdDirs) {
      if (this.explicitDirs.has(path)) continue;
      const c = path.split('/');
      if ((await this.tree.parentsAreDirs(c)) && (await this.tree.lstat(c))?.isDirectory()) implicitDirs.push(path);
    }
    this.marks.whiteouts = whiteouts.sort();
    this.marks.opaques = opaques.sort();
    this.marks.implicitDirs = implicitDirs.sort();
    // Real entries mark their parents as touched; whiteouts and opaque markers do not.
    this.marks.whiteoutDirs = implicitDirs.filter((p) => !this.touched.has(p));
  }

  /** Removes what lower layers put under `dir`, keeping what this layer already wrote there. */
  private prune(dir: string[]): void {
    for (const child of readdirSync(this.tree.abs(dir))) {
      const c = [...dir, child];
      if (!this.touched.has(c.join('/'))) this.tree.removeSync(c);
      else if (this.tree.lstatSync(c)?.isDirectory()) this.prune(c);
    }
  }

  /** Final directory modes, deepest and latest first, so a read-only directory never blocked a write. */
  async finish(): Promise<void> {
    for (const d of [...this.dirs].reverse()) {
      // A later entry may have replaced the directory (or a parent) with something else.
      // (The tree's directory cache knows most of them; what it does not know is lstat'ed.)
      if (!this.tree.isDir(d.components)) continue;
      const path = this.tree.abs(d.components);
      chmodSync(path, d.mode);
      if (d.mtime) utimesSync(path, d.mtime, d.mtime);
    }
    if (this.overlay) await this.writeMarks();
  }
}
