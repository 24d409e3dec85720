import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { chmod, copyFile, lchown, link, lstat, lutimes, mkdir, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { toSkiffError } from './errors.js';
import type { LayerInfo } from './layer-cache.js';
import { lstatOrNull } from './fs-util.js';

const CAN_CHOWN = process.getuid?.() === 0;


/**
 * Copies cached layers (overlay format, bottom first) into one plain tree, with overlayfs's
 * rules: a whiteout device removes the path, an opaque directory drops what lower layers
 * put in it, a directory merges with a lower directory and replaces anything else. Parents
 * are handled before children and every non-directory is removed before it is replaced,
 * so nothing is ever written through a symlink. Files are copied (reflinked where the
 * filesystem can), never hard-linked to the cache, so the result can be changed freely.
 */
async function applyLayer(layer: LayerInfo, dest: string): Promise<void> {
  const opaque = new Set(layer.opaques);
  const dirs: Array<{ path: string; st: Stats }> = [];
  /** Hard links inside the layer stay hard links in the result. */
  const inodes = new Map<number, string>();
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
      if (have) await rm(dst, { recursive: true, force: true });
      if (st.isSymbolicLink()) {
        await symlink(await readlink(src), dst);
      } else if (st.nlink > 1 && inodes.has(st.ino)) {
        await link(inodes.get(st.ino) as string, dst);
        continue;
      } else {
        await copyFile(src, dst, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
        if (st.nlink > 1) inodes.set(st.ino, dst);
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
    for (const layer of layers) await applyLayer(layer, tmp);
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
