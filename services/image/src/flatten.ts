import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { chmod, copyFile, lchown, link, lstat, lutimes, mkdir, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { toSkiffError } from './errors.js';
import type { LayerInfo } from './layer-cache.js';
import { lstatOrNull } from './fs-util.js';

const CAN_CHOWN = process.getuid?.() === 0;

/**
 * The cached file each regular file of the result was copied from, by result path. Files
 * with one source inode stay one inode in the result: hard links within a layer, and a
 * fixup's link to a lower layer's file (fixups.ts), which may come after a layer above
 * replaced that file with a directory made only for whiteouts.
 */
class Copies {
  private readonly source = new Map<string, string>();
  private readonly paths = new Map<string, string[]>();

  constructor(private readonly dest: string) {}

  holds(rel: string, key: string): boolean {
    return this.source.get(rel) === key;
  }

  add(rel: string, key: string): void {
    this.source.set(rel, key);
    this.paths.set(key, [...(this.paths.get(key) ?? []), rel]);
  }

  /** A path of the result that still holds a copy of `key`, if any. */
  async surviving(key: string): Promise<string | undefined> {
    for (const rel of this.paths.get(key) ?? []) {
      if (this.holds(rel, key) && (await lstatOrNull(join(this.dest, rel)))?.isFile()) return rel;
    }
    return undefined;
  }
}


/**
 * Copies cached layers (overlay format, bottom first) into one plain tree, with overlayfs's
 * rules: a whiteout device removes the path, an opaque directory drops what lower layers
 * put in it, a directory merges with a lower directory and replaces anything else. Parents
 * are handled before children and every non-directory is removed before it is replaced,
 * so nothing is ever written through a symlink. Files are copied (reflinked where the
 * filesystem can), never hard-linked to the cache, so the result can be changed freely.
 */
async function applyLayer(layer: LayerInfo, dest: string, copies: Copies): Promise<void> {
  const opaque = new Set(layer.opaques);
  const dirs: Array<{ path: string; st: Stats }> = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of await readdir(join(layer.dir, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const src = join(layer.dir, r);
      const dst = join(dest, r);
      const st = await lstat(src);
      const have = await lstatOrNull(dst);
      if (st.isCharacterDevice()) {
        if (have) await rm(dst, { recursive: true, force: true });
        continue;
      }
      if (st.isDirectory()) {
        if (have && !have.isDirectory()) await rm(dst, { force: true });
        if (!have || !have.isDirectory()) await mkdir(dst, { mode: 0o700 });
        else if (opaque.has(r)) for (const child of await readdir(dst)) await rm(join(dst, child), { recursive: true, force: true });
        dirs.push({ path: dst, st });
        await walk(r);
        continue;
      }
      const key = `${st.dev}:${st.ino}`;
      if (have?.isFile() && copies.holds(r, key)) continue; // this very file is already here
      if (have) await rm(dst, { recursive: true, force: true });
      const twin = st.isFile() && st.nlink > 1 ? await copies.surviving(key) : undefined;
      if (st.isSymbolicLink()) {
        await symlink(await readlink(src), dst);
      } else if (twin !== undefined) {
        await link(join(dest, twin), dst);
        copies.add(r, key);
        continue;
      } else {
        await copyFile(src, dst, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
        copies.add(r, key);
        await chmod(dst, st.mode & 0o7777);
      }
      if (CAN_CHOWN) await lchown(dst, st.uid, st.gid);
      await lutimes(dst, st.atime, st.mtime);
    }
  };
  await walk('');
  // Deepest first, so a read-only directory never blocked its children.
  for (const { path, st } of dirs.reverse()) {
    if (CAN_CHOWN) await lchown(path, st.uid, st.gid);
    await chmod(path, st.mode & 0o7777);
    await lutimes(path, st.atime, st.mtime);
  }
}

/**
 * Writes the layers as one plain tree at `dest` via a temp sibling and a rename. If a
 * complete tree is already there (a concurrent flatten won), it is kept and returned as is.
 */
export async function flattenLayers(layers: LayerInfo[], dest: string): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  const tmp = join(dirname(dest), `.${basename(dest)}.flat-${randomBytes(6).toString('hex')}`);
  await mkdir(tmp, { mode: 0o700 });
  try {
    const copies = new Copies(tmp);
    for (const layer of layers) await applyLayer(layer, tmp, copies);
    await chmod(tmp, 0o755);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw toSkiffError(err, `flattening into ${dest}`);
  }
  try {
    await rename(tmp, dest);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') {
      await rm(tmp, { recursive: true, force: true });
      return;
    }
    await rm(tmp, { recursive: true, force: true });
    throw toSkiffError(err, `flattening into ${dest}`);
  }
}
