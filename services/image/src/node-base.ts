import { execFile } from 'node:child_process';
import { readFile, realpath } from 'node:fs/promises';
import { posix } from 'node:path';
import { promisify } from 'node:util';
import { SkiffError } from '@skiff/contracts';
import { commitImage, EPOCH_ISO } from './commit.js';
import { DEFAULT_PATH } from './busybox.js';
import { putLayer, type LayerEntry } from './layer-writer.js';
import { hostArchitecture } from './platform.js';
import type { ImageStore } from './store.js';
import type { Descriptor, ImageConfig } from './types.js';

const run = promisify(execFile);

export interface NodeBaseOptions {
  /** The node binary to ship; default: the one running this process. */
  node?: string;
  ref?: string;
}

const PASSWD = 'root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nnobody:x:65534:\n';

/**
 * The files node needs at run time, as absolute paths: the binary, each shared library
 * `ldd` resolves (read through symlinks, stored under the name the loader asks for) and
 * the dynamic loader itself. Anything ldd cannot resolve is an error, not a silent gap.
 */
export async function nodeRuntimeFiles(node: string): Promise<string[]> {
  const { stdout } = await run('ldd', [node], { maxBuffer: 1 << 20 });
  const files = new Set<string>();
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('linux-vdso') || line.startsWith('linux-gate')) continue;
    if (line.includes('not found')) throw new SkiffError('SKIFF_INTERNAL', `ldd ${node}: ${line}`);
    const arrow = /=>\s+(\/\S+)/.exec(line);
    const bare = /^(\/\S+)/.exec(line);
    const path = arrow?.[1] ?? bare?.[1];
    if (path) files.add(posix.normalize(path));
  }
  if (![...files].some((f) => /\/ld-linux|\/ld-musl|\/ld\.so/.test(f))) throw new SkiffError('SKIFF_INTERNAL', `ldd ${node} named no dynamic loader`);
  return [...files].sort();
}

/** Every directory above `path`, as tar names ("usr", "usr/local", ...). */
function parentsOf(path: string): string[] {
  const parts = path.split('/').filter(Boolean).slice(0, -1);
  return parts.map((_p, i) => parts.slice(0, i + 1).join('/'));
}

/** `node:latest`: the host's node at /usr/local/bin/node with exactly its shared libraries; nothing else runs in it. */
export async function buildNodeBase(store: ImageStore, opts: NodeBaseOptions = {}): Promise<Descriptor> {
  const node = opts.node ?? process.execPath;
  const files = new Map<string, Buffer>();
  try {
    files.set('usr/local/bin/node', await readFile(await realpath(node)));
    for (const lib of await nodeRuntimeFiles(node)) files.set(lib.slice(1), await readFile(await realpath(lib)));
  } catch (err) {
    if (err instanceof SkiffError) throw err;
    throw new SkiffError('SKIFF_INTERNAL', `cannot collect ${node} and its libraries: ${(err as Error).message}`, { cause: err });
  }
  const dirs = new Set<string>(['etc', 'tmp', 'proc', 'sys', 'dev', 'root']);
  for (const f of files.keys()) for (const d of parentsOf(`/${f}`)) dirs.add(d);
  const entries: LayerEntry[] = [
    ...[...dirs].map((name): LayerEntry => ({ type: 'directory', name, mode: name === 'tmp' ? 0o1777 : name === 'root' ? 0o700 : 0o755 })),
    ...[...files].map(([name, data]): LayerEntry => ({ type: 'file', name, mode: 0o755, data })),
    { type: 'file', name: 'etc/passwd', mode: 0o644, data: Buffer.from(PASSWD) },
    { type: 'file', name: 'etc/group', mode: 0o644, data: Buffer.from(GROUP) },
  ];
  const { layer, diffId } = await putLayer(store, entries);
  const config: ImageConfig = {
    architecture: hostArchitecture(),
    os: 'linux',
    config: { Env: [DEFAULT_PATH], Entrypoint: ['/usr/local/bin/node'] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created: EPOCH_ISO, created_by: `skiff buildNodeBase (node ${process.version}, ${files.size - 1} libraries)` }],
    created: EPOCH_ISO,
  };
  return commitImage(store, config, [layer], opts.ref ?? 'node:latest');
}
