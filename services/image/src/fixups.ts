import { chmod, lchown, link, lstat, lutimes, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Stats } from 'node:fs';
import { checkLayer } from './compose.js';
import { sha256 } from './digest.js';
import type { LayerCache, LayerInfo, LayerRecord } from './layer-cache.js';
import { writeOverlayMarks } from './overlay-marks.js';
import { viewAt, type View } from './overlay-view.js';

const CAN_CHOWN = process.getuid?.() === 0;

/** One correction to a layer's implicit directory ('/'-joined path), as a flat unpack would have it. */
type Fix =
  /** Made only for whiteouts where the layers below have no directory: show what they show. */
  | { path: string; hide: View }
  /** Made as a parent where the layers below have a directory: keep that directory's attributes. */
  | { path: string; attrs: Stats };

const under = (path: string, dir: string): boolean => path.startsWith(`${dir}/`);

/**
 * The image's stack as it is mounted or flattened: each layer checked against everything
 * below it (checkLayer), with fixups right above the layers that need them.
 *
 * A layer is cached on its own, so the directories it made only as parents (no `a/` entry
 * of their own) are in its tree whatever lies below, as 0755 root directories. A flat
 * unpack, like umoci, keeps the directory already there with its owner and mode, and a
 * whiteout under a path that is missing or not a directory there removes nothing and
 * creates nothing. Where the overlay would show something else, a fixup entry goes right
 * above the layer: a whiteout, or a hard link to the lower file, over a directory
 * made only for whiteouts, copies of the lower directories' attributes over the others.
 * Fixups depend on the layers below, so each is cached under a digest of the stack.
 */
export async function composeStack(cache: LayerCache, layers: LayerInfo[]): Promise<LayerInfo[]> {
  const out: LayerInfo[] = [];
  for (const [i, layer] of layers.entries()) {
    const below = [...out].reverse();
    await checkLayer(layer, i, below);
    out.push(layer);
    const fixes = await fixesFor(layer, below);
    if (fixes.length === 0) continue;
    const id = sha256(`skiff fixup v1\n${layers.slice(0, i + 1).map((l) => l.diffId).join('\n')}\n`);
    const stack = [...out].reverse();
    out.push(await cache.ensureDerived(id, (tree) => buildFixup(tree, stack, fixes)));
  }
  return out;
}

async function fixesFor(layer: LayerInfo, below: LayerInfo[]): Promise<Fix[]> {
  const whiteoutOnly = new Set(layer.whiteoutDirs);
  const fixes: Fix[] = [];
  for (const path of [...layer.implicitDirs].sort()) {
    // Below a hidden directory nothing shows; below an opaque one the lower layers do not count.
    if (fixes.some((f) => 'hide' in f && under(path, f.path)) || layer.opaques.some((o) => under(path, o))) continue;
    const view = await viewAt(below, path.split('/'));
    if (view.kind === 'dir') {
      const theirs = await lstat(join((view.layer as LayerInfo).dir, path));
      const ours = await lstat(join(layer.dir, path));
      if (theirs.mode !== ours.mode || theirs.uid !== ours.uid || theirs.gid !== ours.gid) fixes.push({ path, attrs: theirs });
    } else if (whiteoutOnly.has(path)) {
      fixes.push({ path, hide: view });
    }
    // Otherwise a new directory, as a flat unpack makes it (a file below was refused by checkLayer).
  }
  return fixes;
}

async function buildFixup(tree: string, stack: LayerInfo[], fixes: Fix[]): Promise<LayerRecord> {
  const started = performance.now();
  // Every directory in the fixup carries the attributes the stack should show there, so
  // it changes nothing but the fixed paths. Parents come before children (sorted paths).
  const dirs = new Map<string, Stats>();
  const whiteouts: string[] = [];
  for (const fix of fixes) {
    const comps = fix.path.split('/');
    for (let m = 1; m < comps.length; m++) {
      const rel = comps.slice(0, m).join('/');
      if (dirs.has(rel)) continue;
      const { layer } = await viewAt(stack, comps.slice(0, m));
      await mkdir(join(tree, rel), { mode: 0o700 });
      dirs.set(rel, await lstat(join((layer as LayerInfo).dir, rel)));
    }
    if ('attrs' in fix) {
      await mkdir(join(tree, fix.path), { mode: 0o700 });
      dirs.set(fix.path, fix.attrs);
    } else if (fix.hide.kind === 'none') {
      whiteouts.push(fix.path);
    } else {
      await link(join((fix.hide.layer as LayerInfo).dir, fix.path), join(tree, fix.path));
    }
  }
  await writeOverlayMarks(whiteouts.map((p) => join(tree, p)), []);
  // Deepest first, so a read-only directory never blocked its children.
  for (const [rel, st] of [...dirs].reverse()) {
    const path = join(tree, rel);
    if (CAN_CHOWN) await lchown(path, st.uid, st.gid);
    await chmod(path, st.mode & 0o7777);
    await lutimes(path, st.atime, st.mtime);
  }
  const entries = dirs.size + fixes.filter((f) => 'hide' in f).length;
  return { entries, dropped: 0, diskBytes: entries * 512, unpackMs: Math.round(performance.now() - started), whiteouts: whiteouts.sort(), opaques: [], implicitDirs: [], whiteoutDirs: [] };
}
