import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { SkiffError } from '@skiff/contracts';
import { unsafe } from './errors.js';
import type { LayerInfo } from './layer-cache.js';
import { MOUNT_POINTS } from './unpack.js';
import { lstatOrNull } from './fs-util.js';
import { viewAt } from './overlay-view.js';

const run = promisify(execFile);
/** mount(2) takes at most a page of options. */
const MAX_OPTIONS = 4000;


/**
 * Layers are unpacked on their own, so rule 2 across layers is checked here: a layer that
 * puts entries under a directory it never declared (made only as a parent) must not find a
 * symlink at that path in the layers below; a flat unpack would have written through it.
 * Nor a file: a flat unpack (and umoci) refuses to write under a file. A declared directory
 * replaces a lower symlink or file, as in every other unpacker. Directories made only for
 * whiteouts are left to fixups.ts: a whiteout under a file removes nothing.
 * `lowers` is the stack below the layer, topmost first.
 */
export async function checkLayer(layer: LayerInfo, index: number, lowers: LayerInfo[]): Promise<void> {
  const implicit = new Set(layer.implicitDirs);
  const whiteoutOnly = new Set(layer.whiteoutDirs);
  for (const dir of layer.implicitDirs) {
    const comps = dir.split('/');
    for (let m = 1; m <= comps.length; m++) {
      const prefix = comps.slice(0, m).join('/');
      const { kind } = await viewAt(lowers, comps.slice(0, m));
      if (kind === 'symlink' && implicit.has(prefix)) {
        throw unsafe(`layer ${index} ${layer.diffId} writes under /${prefix}, a symlink in a lower layer; refusing to write through it`);
      }
      if (kind === 'other' && implicit.has(prefix) && !whiteoutOnly.has(prefix)) {
        throw unsafe(`layer ${index} ${layer.diffId} writes under /${prefix}, which is not a directory in a lower layer`);
      }
      if (kind !== 'dir' || layer.opaques.includes(prefix)) break;
    }
  }
}

/** checkLayer for every layer of a stack (bottom first). */
export async function checkLayerStack(layers: LayerInfo[]): Promise<void> {
  for (let i = 1; i < layers.length; i++) await checkLayer(layers[i] as LayerInfo, i, layers.slice(0, i).reverse());
}

/** The topmost layer of every image: real directories where the runtime mounts /proc, /sys, /dev, /tmp. */
export async function ensureMountPointsLayer(root: string): Promise<string> {
  const dir = join(root, 'skiff-mountpoints');
  if (await lstatOrNull(join(dir, 'tree', 'tmp'))) return join(dir, 'tree');
  // Unique per call: two caches in one process may build it in the same millisecond.
  const tmp = `${dir}.tmp-${randomBytes(6).toString('hex')}`;
  await mkdir(join(tmp, 'tree'), { recursive: true });
  for (const [name, mode] of MOUNT_POINTS) {
    await mkdir(join(tmp, 'tree', name));
    await chmod(join(tmp, 'tree', name), mode);
  }
  await rename(tmp, dir).catch(async () => rm(tmp, { recursive: true, force: true }));
  return join(dir, 'tree');
}

export function overlaySupported(): Promise<boolean> {
  if (process.getuid?.() !== 0) return Promise.resolve(false);
  return readFile('/proc/filesystems', 'utf8').then((t) => /\boverlay\b/.test(t), () => false);
}

/**
 * Mounts the layers (bottom first) read-only with overlayfs at `target`. Paths are given
 * relative to `cwd` (the layer cache) to keep the option string short; too many layers for
 * one page of options throw, and the caller flattens instead.
 */
export async function mountOverlay(lowerDirs: string[], target: string, cwd: string): Promise<void> {
  const rel = lowerDirs.map((d) => relative(cwd, d));
  if (rel.some((d) => d.startsWith('..') || /[:,\\]/.test(d))) throw new SkiffError('SKIFF_INTERNAL', 'overlay lower directories must sit in the layer cache');
  const options = `ro,nodev,nosuid,lowerdir=${[...rel].reverse().join(':')}`;
  if (options.length > MAX_OPTIONS) throw new SkiffError('SKIFF_INTERNAL', `${lowerDirs.length} layers are too many for one overlay mount`);
  try {
    await run('mount', ['-t', 'overlay', 'overlay', '-o', options, target], { cwd });
  } catch (err) {
    throw new SkiffError('SKIFF_INTERNAL', `mounting overlay at ${target}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, { cause: err });
  }
}

export async function unmount(target: string): Promise<void> {
  try {
    await run('umount', [target]);
  } catch {
    // Busy (a container still has it): detach now, the kernel frees it when the last user leaves.
    await run('umount', ['-l', target]);
  }
}

/** Mount points at or below `prefix`, deepest first, from this process's mount table. */
export async function mountsUnder(prefix: string): Promise<string[]> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of table.split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    const path = field.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (path === prefix || path.startsWith(`${prefix}/`)) out.push(path);
  }
  return out.sort((a, b) => b.length - a.length);
}

export async function isMountPoint(path: string): Promise<boolean> {
  return (await mountsUnder(path)).includes(path);
}
