import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { SkiffError } from '@skiff/contracts';
import { commitImage, EPOCH_ISO } from './commit.js';
import { putLayer, type LayerEntry } from './layer-writer.js';
import type { ImageStore } from './store.js';
import type { Descriptor, ImageConfig } from './types.js';

export interface PackOptions {
  dir: string;
  base: string;
  ref: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: Record<string, string>;
  workdir?: string;
  labels?: Record<string, string>;
  /** Called with the '/'-separated path relative to `dir`; true leaves the file (or whole directory) out. */
  exclude?: (relPath: string) => boolean;
  /** Directory in the image that receives the files (default `function`, i.e. /function). */
  root?: string;
  /** Empty directories the layer adds besides (plain names at the image's root), e.g. mount points. */
  mountPoints?: string[];
}

const ROOT = 'function';

/** Walks without following symlinks; sockets, FIFOs and devices in a function dir are skipped. */
async function collect(dir: string, rel: string, exclude: PackOptions['exclude'], out: LayerEntry[], root: string): Promise<void> {
  for (const name of await readdir(join(dir, rel))) {
    const relPath = rel ? `${rel}/${name}` : name;
    if (exclude?.(relPath)) continue;
    const abs = join(dir, relPath);
    const st = await lstat(abs);
    const tarName = `${root}/${relPath}`;
    if (st.isDirectory()) {
      out.push({ type: 'directory', name: tarName, mode: st.mode & 0o7777 });
      await collect(dir, relPath, exclude, out, root);
    } else if (st.isFile()) {
      out.push({ type: 'file', name: tarName, mode: st.mode & 0o7777, data: await readFile(abs) });
    } else if (st.isSymbolicLink()) {
      out.push({ type: 'symlink', name: tarName, target: await readlink(abs) });
    }
  }
}

/** Base env first; a key given in `env` replaces the base value in place, new keys follow. */
export function mergeEnv(base: string[] | undefined, env: Record<string, string>): string[] {
  for (const key of Object.keys(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      throw new SkiffError('SKIFF_VALIDATION_FAILED', `environment variable name ${JSON.stringify(key)} is invalid`, {
        errors: [{ field: `env.${key}`, message: 'must match [A-Za-z_][A-Za-z0-9_]*' }],
      });
    }
  }
  const given = new Map(Object.entries(env));
  const out = (base ?? []).map((kv) => {
    const key = kv.split('=', 1)[0] ?? kv;
    const value = given.get(key);
    if (value === undefined) return kv;
    given.delete(key);
    return `${key}=${value}`;
  });
  for (const [k, v] of given) out.push(`${k}=${v}`);
  return out;
}

export async function packFunction(store: ImageStore, opts: PackOptions): Promise<Descriptor> {
  const root = opts.root ?? ROOT;
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(root)) {
    throw new SkiffError('SKIFF_VALIDATION_FAILED', `pack root ${JSON.stringify(root)} must be one plain directory name`, { errors: [{ field: 'root', message: 'must be one directory name' }] });
  }
  const base = await store.resolve(opts.base);
  const entries: LayerEntry[] = [{ type: 'directory', name: root, mode: 0o755 }];
  for (const dir of opts.mountPoints ?? []) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(dir) || dir === root) {
      throw new SkiffError('SKIFF_VALIDATION_FAILED', `mount point ${JSON.stringify(dir)} must be one plain directory name other than the root`, { errors: [{ field: 'mountPoints', message: 'must be plain directory names' }] });
    }
    entries.push({ type: 'directory', name: dir, mode: 0o755 });
  }
  try {
    await collect(opts.dir, '', opts.exclude, entries, root);
  } catch (err) {
    if (err instanceof SkiffError) throw err;
    throw new SkiffError('SKIFF_VALIDATION_FAILED', `cannot read function directory ${opts.dir}: ${(err as Error).message}`, {
      cause: err,
      errors: [{ field: 'dir', message: 'must be a readable directory' }],
    });
  }
  const { layer, diffId } = await putLayer(store, entries);

  const config: ImageConfig = structuredClone(base.config);
  const run = { ...config.config };
  if (opts.entrypoint) {
    run.Entrypoint = [...opts.entrypoint];
    // As with Docker: a new entrypoint drops the base's Cmd, or it would become its arguments.
    if (!opts.cmd) delete run.Cmd;
  }
  if (opts.cmd) run.Cmd = [...opts.cmd];
  if (opts.env) run.Env = mergeEnv(run.Env, opts.env);
  run.WorkingDir = opts.workdir ?? `/${root}`;
  if (opts.labels) run.Labels = { ...opts.labels };
  config.config = run;
  config.rootfs = { type: 'layers', diff_ids: [...config.rootfs.diff_ids, diffId] };
  config.history = [...(config.history ?? []), { created: EPOCH_ISO, created_by: 'skiff packFunction', comment: `${entries.length} entries under /${root}` }];
  config.created = EPOCH_ISO;
  return commitImage(store, config, [...base.manifest.layers, layer], opts.ref);
}
