import { join } from 'node:path';
import { lstatOrNull } from './fs-util.js';
import type { LayerInfo } from './layer-cache.js';

export type ViewKind = 'none' | 'dir' | 'symlink' | 'other';

export interface View {
  kind: ViewKind;
  /** The layer whose entry is seen: for a directory the topmost one (overlayfs shows its attributes). */
  layer?: LayerInfo;
}

/**
 * What the overlay of `layers` (topmost first) shows at `comps`, found the way overlayfs
 * finds it: directories merge downwards until an opaque one; a whiteout, file or symlink
 * ends the stack. Only paths whose every parent is a real directory in that layer are
 * looked at, so nothing here follows a symlink. A symlink met above the full path is
 * reported as 'symlink' (something would be written through it); a file there as 'none'.
 */
export async function viewAt(layers: LayerInfo[], comps: string[]): Promise<View> {
  let candidates = layers;
  for (let m = 1; m <= comps.length; m++) {
    const p = comps.slice(0, m).join('/');
    const next: LayerInfo[] = [];
    let seen: View = { kind: 'none' };
    for (const layer of candidates) {
      const st = await lstatOrNull(join(layer.dir, p));
      if (!st) continue;
      if (st.isDirectory()) {
        next.push(layer);
        seen = { kind: 'dir', layer: next[0] as LayerInfo };
        if (layer.opaques.includes(p)) break;
        continue;
      }
      // Below a directory, an entry of another kind is hidden by it.
      if (seen.kind === 'none') seen = st.isCharacterDevice() ? { kind: 'none' } : { kind: st.isSymbolicLink() ? 'symlink' : 'other', layer };
      break;
    }
    if (seen.kind !== 'dir') return seen.kind === 'symlink' || m === comps.length ? seen : { kind: 'none' };
    candidates = next;
  }
  return { kind: 'dir', ...(candidates[0] ? { layer: candidates[0] } : {}) };
}
