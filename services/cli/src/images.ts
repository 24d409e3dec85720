import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ImageStore, buildBusyboxBase, buildNodeRuntime, packFunction, type Descriptor } from '@skiff/image';
import { REPO_ROOT } from './paths.js';
import { loadManifest, type FunctionManifest } from './manifest.js';

export const BUSYBOX_REF = 'busybox:latest';
export const NODE_REF = 'node:latest';
export const NODE_RUNTIME_REF = 'node-runtime:latest';

/** The function directories under `root` (each has a function.yaml). */
export function findFunctions(root: string): FunctionManifest[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, d.name, 'function.yaml')))
    .map((d) => loadManifest(join(root, d.name)))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Packs a function directory onto its base image and tags it `<name>:latest`. */
export async function packManifest(store: ImageStore, fn: FunctionManifest): Promise<{ ref: string; manifest: Descriptor }> {
  const ref = `${fn.name}:latest`;
  const manifest = await packFunction(store, {
    dir: fn.dir,
    base: fn.base,
    ref,
    entrypoint: fn.entrypoint,
    labels: { 'dev.skiff.mode': fn.mode },
    ...(fn.env ? { env: fn.env } : {}),
    exclude: (rel) => rel === 'function.yaml',
  });
  return { ref, manifest };
}

/** The busybox base image; deterministic, so rebuilding gives the same digest. */
export async function ensureBase(store: ImageStore): Promise<Descriptor> {
  return buildBusyboxBase(store, { ref: BUSYBOX_REF });
}

/** `node-runtime:latest`: the node base with functions/runtimes/node under /runtime. */
export function ensureNodeRuntime(store: ImageStore): Promise<Descriptor> {
  return buildNodeRuntime(store, { runtimeDir: join(REPO_ROOT, 'functions/runtimes/node'), baseRef: NODE_REF, ref: NODE_RUNTIME_REF });
}

/** The base images the given functions build on. */
export async function ensureBasesFor(store: ImageStore, functions: FunctionManifest[]): Promise<void> {
  await ensureBase(store);
  if (functions.some((f) => f.base === NODE_RUNTIME_REF)) await ensureNodeRuntime(store);
}
