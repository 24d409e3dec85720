/**
 * Whether a function can adopt a stem cell: a pure decision over the two images. A stem cell
 * runs the stem image's process; the function's container must be exactly what the function's
 * own image makes of it. So the function's image must be the stem image plus layers that only
 * add under /function (that directory is then mounted from the function's image itself), run
 * the same process as the same user, and set no variable that Node.js reads only as it starts
 * (those the stem cell read already) to another value than the stem cell has.
 */
import type { ImageConfig } from '@skiff/image';
import { numericUser, processArgs } from '../bundle.js';

/** What the stem cell mounts from the function's image. */
export const FUNCTION_DIR = 'function';

/** An extra layer of the function's image, as unpacked: its top-level entries and overlay marks. */
export interface LayerTop {
  diffId: string;
  /** Names directly under the layer's root, with whether each is a directory (not a link). */
  entries: { name: string; directory: boolean }[];
  /** '/'-joined paths of the layer's whiteouts and opaque directories ('' is its root). */
  whiteouts: string[];
  opaques: string[];
}

/**
 * Variables Node.js (or the C library and OpenSSL under it) reads as the process starts, or
 * once for good: a stem cell has read the stem's values already, so a function that sets
 * another value must get a process started for it.
 */
const STARTUP_VARIABLE = /^(NODE_|UV_|LD_|OPENSSL_|SSL_|MALLOC_|GLIBC_|GCONV_|LOCPATH$|TZ$|TZDIR$|LANG$|LANGUAGE$|LC_|ICU_)/;

const under = (p: string) => p === FUNCTION_DIR || p.startsWith(`${FUNCTION_DIR}/`);

function envMap(env: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of env) {
    const eq = kv.indexOf('=');
    if (eq > 0) m.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return m;
}

/**
 * Undefined when the function fits the stem cell, otherwise why not (for the logs).
 * `stemEnv` is the environment the stem cell was started with, `fnEnv` the one the function
 * would be started with; `extra` the function image's layers above the stem image's.
 */
export function stemMisfit(stem: ImageConfig, stemEnv: string[], fn: ImageConfig, fnEnv: string[], extra: LayerTop[]): string | undefined {
  const base = stem.rootfs.diff_ids;
  const layers = fn.rootfs.diff_ids;
  if (layers.length <= base.length || base.some((d, i) => layers[i] !== d)) return 'the image is not the stem image plus layers of its own';
  if (extra.length !== layers.length - base.length || extra.some((l, i) => l.diffId !== layers[base.length + i])) return 'the layers above the stem image are not all known';
  for (const l of extra) {
    if (l.entries.some((e) => e.name !== FUNCTION_DIR || !e.directory)) return `layer ${l.diffId} adds outside /${FUNCTION_DIR}`;
    if (!l.whiteouts.every(under) || !l.opaques.every(under)) return `layer ${l.diffId} removes outside /${FUNCTION_DIR}`;
  }
  let args: string[];
  let stemArgs: string[];
  try {
    args = processArgs(fn);
    stemArgs = processArgs(stem);
  } catch (err) {
    return (err as Error).message;
  }
  if (args.length !== stemArgs.length || args.some((a, i) => a !== stemArgs[i])) return `the image runs ${JSON.stringify(args)}, the stem cell ${JSON.stringify(stemArgs)}`;
  try {
    const u = numericUser(fn.config?.User);
    const s = numericUser(stem.config?.User);
    if (u.uid !== s.uid || u.gid !== s.gid) return 'the image runs as another user than the stem cell';
  } catch (err) {
    return (err as Error).message;
  }
  const have = envMap(stemEnv);
  const want = envMap(fnEnv);
  for (const name of new Set([...have.keys(), ...want.keys()])) {
    if (STARTUP_VARIABLE.test(name) && have.get(name) !== want.get(name)) return `${name} is read as Node.js starts, and differs from the stem cell's`;
  }
  return undefined;
}
