/*
 * Running the real tools (umoci, buildah, skopeo, oci-image-tool) and Skiff's two unpack paths
 * (the CLI, which uses the layer cache + flatten as root, and the library's unpackImage) on
 * the same OCI layout, and comparing the trees.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Stats } from 'node:fs';
import { ImageStore, unpackImage } from '../../services/image/src/index.js';
import { treeManifest, type ManifestOptions } from './tree.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(REPO, 'services/cli/dist/main.js');
export const isRoot = process.getuid?.() === 0;

export { have } from '@skiff/testkit';

/** Runs a tool, returning stdout; a failure throws with the tool's stderr in the message. */
export function sh(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string | Buffer } = {}): string {
  const r = spawnSync(cmd, args, { env: { ...process.env, ...opts.env }, cwd: opts.cwd, input: opts.input, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${r.stderr.toString()}${r.stdout.toString()}`);
  return r.stdout.toString();
}

const temps: string[] = [];
export function tempDir(prefix = 'skiff-compat-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}
export function cleanTemps(): void {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** The reference: `umoci unpack --image layout:ref bundle`, as root (so owners are kept). Returns bundle/rootfs. */
export function umociUnpack(layout: string, ref: string, bundle: string): string {
  sh('umoci', ['unpack', '--image', `${layout}:${ref}`, bundle]);
  return join(bundle, 'rootfs');
}

/** `skiff image unpack layout:ref dest` through the built CLI, with a private data dir (layer cache). */
export function skiffCliUnpack(layout: string, ref: string, dest: string, dataDir: string): string {
  execFileSync(process.execPath, [CLI, 'image', 'unpack', `${layout}:${ref}`, dest], { env: { ...process.env, SKIFF_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] });
  return dest;
}

/** The library's flat unpacker on the same layout. */
export async function skiffLibUnpack(layout: string, ref: string, dest: string): Promise<string> {
  const store = await ImageStore.open(layout);
  const image = await store.resolve(ref);
  await unpackImage(store, image.digest, dest);
  return dest;
}

/**
 * The documented differences between Skiff and umoci, applied to both sides:
 *  - setuid/setgid bits are stripped by Skiff (README rule 6): cleared on umoci's side;
 *  - device nodes and FIFOs are dropped by Skiff (rule 6): left out on umoci's side;
 *  - the root directory is always 0755 root:root in Skiff (rule 1): the root line is left out;
 *  - the library unpacker adds real directories /proc /sys /dev /tmp (mount points) when the
 *    image lacks them: left out on Skiff's side when umoci has no such path.
 */
export function compareOptions(reference: string): { ref: ManifestOptions; skiff: ManifestOptions } {
  const refHas = (p: string): boolean => {
    try {
      execFileSync('test', ['-e', join(reference, p)]);
      return true;
    } catch {
      return false;
    }
  };
  const mountPoints = new Set(['/proc', '/sys', '/dev', '/tmp'].filter((p) => !refHas(p)));
  const common = { mtimes: true } satisfies ManifestOptions;
  return {
    ref: { ...common, stripSetId: true, dropSpecial: true, ignore: (p: string) => p === '/' },
    skiff: { ...common, ignore: (p: string, _st: Stats) => p === '/' || mountPoints.has(p) },
  };
}

/** Both manifests, for `expect(skiff).toEqual(ref)` (vitest prints a line diff on failure). */
export function manifests(reference: string, skiff: string): { ref: string[]; skiff: string[] } {
  const o = compareOptions(reference);
  return { ref: treeManifest(reference, o.ref), skiff: treeManifest(skiff, o.skiff) };
}
