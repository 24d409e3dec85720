import { constants, lstatSync, mkdirSync, rmSync, unlinkSync, type Stats } from 'node:fs';
import { unsafe } from './errors.js';

function lstatOrNull(path: string): Stats | null {
  return lstatSync(path, { throwIfNoEntry: false }) ?? null;
}

function errno(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code;
}

/**
 * The directory being unpacked into. Every path is built from checked components, and
 * every parent is checked to be a real directory before use, so nothing is ever resolved
 * through a symlink that a layer planted. The tree is private to one unpack (a fresh temp
 * directory, mode 0700), so a check stays true until the tree itself changes it.
 *
 * That is what makes the directory cache sound: a path goes into `dirs` only after it was
 * created with mkdir or lstat'ed as a directory (never a symlink) by this tree, and leaves
 * it (with everything below it) whenever this tree removes or replaces it. Only this class
 * and the applier, which calls `forget` / `markDir` around its own writes, change the tree.
 * So a cached parent is a real directory without another lstat, and anything not cached is
 * lstat'ed exactly as before. Syscalls are synchronous: each is a few microseconds, where a
 * round trip through the libuv thread pool costs several times that per entry.
 */
export class Tree {
  /** '/'-joined paths known to be real directories; whenever a path is here, so are its parents. */
  private readonly dirs = new Set<string>();
  private readonly prefix: string;

  constructor(readonly root: string) {
    this.prefix = root.endsWith('/') ? root : `${root}/`;
  }

  private defaultOwner: boolean | undefined;

  /**
   * True when a new entry is owned 0:0 without a chown: we run as root and the root is
   * 0:0 without the setgid bit (no directory this tree makes ever gets it: set-id bits are
   * stripped), so created files take uid 0 and gid 0.
   */
  createsAsRoot(): boolean {
    if (this.defaultOwner === undefined) {
      const st = lstatOrNull(this.root);
      this.defaultOwner = process.geteuid?.() === 0 && process.getegid?.() === 0 && st !== null && st.uid === 0 && st.gid === 0 && (st.mode & 0o2000) === 0;
    }
    return this.defaultOwner;
  }

  abs(components: string[]): string {
    return components.length === 0 ? this.root : this.prefix + components.join('/');
  }

  /** Like abs() for an already '/'-joined key. */
  private absKey(key: string): string {
    return key === '' ? this.root : this.prefix + key;
  }

  async lstat(components: string[]): Promise<Stats | null> {
    return this.lstatSync(components);
  }

  lstatSync(components: string[]): Stats | null {
    return lstatOrNull(this.abs(components));
  }

  /** Records a directory the caller just created (its parents were checked by parents()). */
  markDir(components: string[]): void {
    if (components.length > 0) this.dirs.add(components.join('/'));
  }

  /** Drops the path and everything below it from the cache: it is about to be removed or replaced. */
  forget(components: string[]): void {
    const key = components.join('/');
    if (!this.dirs.delete(key)) return;
    const below = `${key}/`;
    for (const d of this.dirs) if (d.startsWith(below)) this.dirs.delete(d);
  }

  /** True when the path is known to be a real directory under real directories (lstat'ed if not cached). */
  isDir(components: string[]): boolean {
    if (components.length === 0) return true;
    if (this.dirs.has(components.join('/'))) return true;
    for (let i = 1; i <= components.length; i++) {
      const sub = components.slice(0, i);
      if (this.dirs.has(sub.join('/'))) continue;
      const st = lstatOrNull(this.abs(sub));
      if (!st?.isDirectory()) return false;
      this.dirs.add(sub.join('/'));
    }
    return true;
  }

  /**
   * Makes sure every parent of `components` is a real directory, creating missing ones
   * (0755) when `create`. Returns false if one is missing and `create` is off, or (when
   * `nonDirIsFalse`) if one is a file: there is nothing below a file. A symlink parent is
   * always refused, as is a non-directory parent unless `nonDirIsFalse`.
   */
  async parents(components: string[], create: boolean, name: string, onCreate?: (sub: string[]) => void, nonDirIsFalse = false): Promise<boolean> {
    return this.parentsSync(components, create, name, onCreate, nonDirIsFalse);
  }

  parentsSync(components: string[], create: boolean, name: string, onCreate?: (sub: string[]) => void, nonDirIsFalse = false): boolean {
    let key = '';
    for (let i = 1; i < components.length; i++) {
      key = i === 1 ? (components[0] as string) : `${key}/${components[i - 1] as string}`;
      if (this.dirs.has(key)) continue;
      const path = this.absKey(key);
      const st = lstatOrNull(path);
      if (st === null) {
        if (!create) return false;
        mkdirSync(path, { mode: 0o755 });
        onCreate?.(components.slice(0, i));
      } else if (st.isSymbolicLink()) {
        throw unsafe(`${JSON.stringify(name)}: parent /${key} is a symlink; refusing to write through it`);
      } else if (!st.isDirectory()) {
        if (nonDirIsFalse) return false;
        throw unsafe(`${JSON.stringify(name)}: parent /${key} is not a directory`);
      }
      this.dirs.add(key);
    }
    return true;
  }

  /** Like parents() without creating, but reports a symlinked parent as false instead of throwing. */
  async parentsAreDirs(components: string[]): Promise<boolean> {
    return this.isDir(components.slice(0, -1));
  }

  /** Removes whatever is at the path (recursively for directories); rm never follows symlinks. */
  async remove(components: string[]): Promise<void> {
    this.removeSync(components);
  }

  removeSync(components: string[]): void {
    if (components.length === 0) throw unsafe('refusing to remove the image root');
    this.forget(components);
    rmSync(this.abs(components), { recursive: true, force: true });
  }

  /**
   * Clears the path for a new entry. A directory stays when `keepDir` (a directory entry
   * over a directory merges); anything else there is removed. Returns what was kept.
   */
  async clear(components: string[], keepDir: boolean): Promise<'dir' | 'none'> {
    return this.clearSync(components, keepDir);
  }

  clearSync(components: string[], keepDir: boolean): 'dir' | 'none' {
    const st = this.lstatSync(components);
    if (!st) return 'none';
    if (st.isDirectory()) {
      if (keepDir) {
        this.markDir(components);
        return 'dir';
      }
      this.removeSync(components);
      return 'none';
    }
    unlinkSync(this.abs(components));
    return 'none';
  }

  /**
   * Creates a new entry with `make` (which must fail with EEXIST rather than follow or reuse
   * anything at the path: O_CREAT|O_EXCL|O_NOFOLLOW, symlink(2), mkdir(2), link(2)). Tries
   * first, so the common case of an empty path costs no lstat; on EEXIST the path is cleared
   * as clear() does and `make` runs once more. Parents must have been checked already.
   */
  create<T>(components: string[], make: (path: string) => T): T {
    const path = this.abs(components);
    try {
      return make(path);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
    }
    this.clearSync(components, false);
    return make(path);
  }

  /** mkdir, or keep the directory already there (a directory entry over a directory merges). */
  mkdirOrKeep(components: string[], mode = 0o755): 'dir' | 'none' {
    const path = this.abs(components);
    try {
      mkdirSync(path, { mode });
      this.markDir(components);
      return 'none';
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
    }
    if (this.clearSync(components, true) === 'dir') return 'dir';
    mkdirSync(path, { mode });
    this.markDir(components);
    return 'none';
  }
}

export const FILE_CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
