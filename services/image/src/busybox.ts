import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { SkiffError } from '@skiff/contracts';
import { commitImage, EPOCH_ISO } from './commit.js';
import { putLayer, type LayerEntry } from './layer-writer.js';
import { hostArchitecture } from './platform.js';
import type { ImageStore } from './store.js';
import type { Descriptor, ImageConfig } from './types.js';

const run = promisify(execFile);

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nnobody:x:65534:\n';
// Applet names become file names; anything odd in `--list` output is skipped, not trusted.
const APPLET_RE = /^[A-Za-z0-9_.[\]-]{1,64}$/;

async function applets(busybox: string): Promise<string[]> {
  const { stdout } = await run(busybox, ['--list'], { maxBuffer: 1 << 20 });
  const names = new Set(stdout.split('\n').map((s) => s.trim()));
  return [...names].filter((n) => n !== 'busybox' && n !== '.' && n !== '..' && APPLET_RE.test(n));
}

export async function buildBusyboxBase(store: ImageStore, opts: { busybox?: string; ref?: string } = {}): Promise<Descriptor> {
  const busybox = opts.busybox ?? '/bin/busybox';
  let binary: Buffer;
  let names: string[];
  try {
    binary = await readFile(busybox);
    names = await applets(busybox);
  } catch (err) {
    throw new SkiffError('SKIFF_INTERNAL', `cannot use ${busybox} as the base image's busybox (a static busybox is needed): ${(err as Error).message}`, { cause: err });
  }
  const entries: LayerEntry[] = [
    { type: 'directory', name: 'bin', mode: 0o755 },
    { type: 'file', name: 'bin/busybox', mode: 0o755, data: binary },
    ...names.map((n): LayerEntry => ({ type: 'symlink', name: `bin/${n}`, target: 'busybox' })),
    { type: 'directory', name: 'dev', mode: 0o755 },
    { type: 'directory', name: 'etc', mode: 0o755 },
    { type: 'file', name: 'etc/group', mode: 0o644, data: Buffer.from(GROUP) },
    { type: 'file', name: 'etc/passwd', mode: 0o644, data: Buffer.from(PASSWD) },
    { type: 'directory', name: 'proc', mode: 0o755 },
    { type: 'directory', name: 'root', mode: 0o700 },
    { type: 'directory', name: 'sys', mode: 0o755 },
    { type: 'directory', name: 'tmp', mode: 0o1777 },
  ];
  const { layer, diffId } = await putLayer(store, entries);
  const config: ImageConfig = {
    architecture: hostArchitecture(),
    os: 'linux',
    config: { Env: [DEFAULT_PATH], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created: EPOCH_ISO, created_by: `skiff buildBusyboxBase (${names.length} applets)` }],
    created: EPOCH_ISO,
  };
  return commitImage(store, config, [layer], opts.ref ?? 'busybox:latest');
}
