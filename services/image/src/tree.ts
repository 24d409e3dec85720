import type { Stats } from 'node:fs';
import { lstat, mkdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { unsafe } from './errors.js';

async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * The directory being unpacked into. Every path is built from checked components, and
 * every parent is lstat'ed before use, so nothing is ever resolved through a symlink that a
 * layer planted. The tree is private to one unpack (a fresh temp directory), so a check
 * stays true until the write that follows it.
 */
export class Tree {
  constructor(readonly root: string) {}

  abs(components: string[]): string {
    return join(this.root, ...components);
  }

  lstat(components: string[]): Promise<Stats | null> {
    return lstatOrNull(this.abs(components));
  }

  /**
   * Makes sure every parent of `components` is a real directory, creating missing ones
   * (0755) when `create`. Returns false if one is
   * missing and `create` is off. A symlink or non-directory parent is refused.
   */
  async parents(components: string[], create: boolean, name: string): Promise<boolean> {
    for (let i = 1; i < components.length; i++) {
      const sub = components.slice(0, i);
      const st = await lstatOrNull(this.abs(sub));
      if (st === null) {
        if (!create) return false;
        await mkdir(this.abs(sub), { mode: 0o755 });
      } else if (st.isSymbolicLink()) {
        throw unsafe(`${JSON.stringify(name)}: parent /${sub.join('/')} is a symlink; refusing to write through it`);
      } else if (!st.isDirectory()) {
        throw unsafe(`${JSON.stringify(name)}: parent /${sub.join('/')} is not a directory`);
      }
    }
    return true;
  }

  /** Like parents() without creating, but reports a symlinked parent as false instead of throwing. */
  async parentsAreDirs(components: string[]): Promise<boolean> {
    for (let i = 1; i < components.length; i++) {
      const st = await lstatOrNull(this.abs(components.slice(0, i)));
      if (!st || !st.isDirectory()) return false;
    }
    return true;
  }

  /** Removes whatever is at the path (recursively for directories); fs.rm never follows symlinks. */
  async remove(components: string[]): Promise<void> {
    if (components.length === 0) throw unsafe('refusing to remove the image root');
    await rm(this.abs(components), { recursive: true, force: true });
  }

  /**
   * Clears the path for a new entry. A directory stays when `keepDir` (a directory entry
   * over a directory merges); anything else there is removed. Returns what was kept.
   */
  async clear(components: string[], keepDir: boolean): Promise<'dir' | 'none'> {
    const st = await this.lstat(components);
    if (!st) return 'none';
    if (st.isDirectory()) {
      if (keepDir) return 'dir';
      await this.remove(components);
      return 'none';
    }
    await unlink(this.abs(components));
    return 'none';
  }
}
