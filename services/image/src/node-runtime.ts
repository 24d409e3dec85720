import { buildNodeBase } from './node-base.js';
import { packFunction } from './pack.js';
import type { ImageStore } from './store.js';
import type { Descriptor } from './types.js';

export interface NodeRuntimeOptions {
  /** The in-container runtime's files (functions/runtimes/node); they land under /runtime. */
  runtimeDir: string;
  baseRef?: string;
  ref?: string;
}

/** True when the store's node base image was built from the Node.js running now. */
async function baseIsCurrent(store: ImageStore, ref: string): Promise<boolean> {
  const image = await store.resolve(ref).catch(() => undefined);
  return !!image?.config.history?.some((h) => JSON.stringify(h).includes(`node ${process.version}`));
}

/** The process of the node runtime image, and of every function built on it. */
export const NODE_RUNTIME_ENTRYPOINT = ['/usr/local/bin/node', '/runtime/runtime.mjs'];

/**
 * The image stream-mode Node.js functions build on: the node base (rebuilt only when Node.js
 * changed, as it is large) plus the runtime under /runtime, which is also its process. It has
 * an empty /function: a function's image fills it, and a stem cell of this image (a runtime
 * booted before its function is known) gets the adopting function's mounted there.
 */
export async function buildNodeRuntime(store: ImageStore, opts: NodeRuntimeOptions): Promise<Descriptor> {
  const baseRef = opts.baseRef ?? 'node:latest';
  if (!(await baseIsCurrent(store, baseRef))) await buildNodeBase(store, { ref: baseRef });
  return packFunction(store, {
    dir: opts.runtimeDir,
    base: baseRef,
    ref: opts.ref ?? 'node-runtime:latest',
    root: 'runtime',
    mountPoints: ['function'],
    entrypoint: NODE_RUNTIME_ENTRYPOINT,
    workdir: '/',
    exclude: (rel) => rel.endsWith('.md'),
  });
}
