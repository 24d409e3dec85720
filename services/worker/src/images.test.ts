import { lstat, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@skiff/service-kit';
import { ImageStore, isMountPoint, mountsUnder, type LayerEvent } from '@skiff/image';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawTar, storeImage, type RawEntry } from '../../image/src/testkit.js';
import { ImageCache } from './images.js';

const root = await mkdtemp(join(tmpdir(), 'skiff-images-'));
const log = createLogger('test', 'silent');
const caches: ImageCache[] = [];
const privileged = process.getuid?.() === 0;

afterAll(async () => {
  for (const c of caches) await c.close();
  // Whatever a failed test left mounted under the temp root goes too, before the tree is removed.
  const { unmount } = await import('@skiff/image');
  for (const m of await mountsUnder(root)) await unmount(m);
  await rm(root, { recursive: true, force: true });
});

const base: RawEntry[] = [
  { name: 'etc/', type: 'directory' },
  { name: 'etc/os', data: 'base' },
  { name: 'etc/gone', data: 'lower' },
  { name: 'opt/', type: 'directory' },
  { name: 'opt/old', data: 'old' },
  { name: 'tmp', type: 'symlink', linkname: '/' },
];

function cacheFor(dir: string, opts: ConstructorParameters<typeof ImageCache>[3] = {}, events?: LayerEvent[]): ImageCache {
  const c = new ImageCache(store, dir, log, { ...opts, onEvent: (_d, e) => events?.push(e) });
  caches.push(c);
  return c;
}

let store: ImageStore;
let fnA: string;
let fnB: string;

beforeAll(async () => {
  store = await ImageStore.open(join(root, 'store'));
  const baseTar = { tar: await rawTar(base) };
  fnA = (
    await storeImage(store, [baseTar, { tar: await rawTar([{ name: 'etc/.wh.gone' }, { name: 'opt/', type: 'directory' }, { name: 'opt/.wh..wh..opq' }, { name: 'opt/new', data: 'A' }]) }], 'a:1')
  ).digest;
  fnB = (await storeImage(store, [baseTar, { tar: await rawTar([{ name: 'function/run', mode: 0o755, data: 'B' }]) }], 'b:1')).digest;
});

describe.skipIf(!privileged)('ImageCache with overlayfs (needs root)', () => {
  it('mounts one read-only overlay per image with whiteouts, opaque dirs and mount points applied', async () => {
    const cache = cacheFor(join(root, 'w1'), { mode: 'overlay' });
    const img = await cache.prepare(fnA);
    expect(await isMountPoint(img.rootfs)).toBe(true);
    expect(await readFile(join(img.rootfs, 'etc/os'), 'utf8')).toBe('base');
    await expect(lstat(join(img.rootfs, 'etc/gone'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readdir(join(img.rootfs, 'opt'))).sort()).toEqual(['new']);
    // The base made /tmp a symlink; the runtime needs a real directory there.
    expect((await lstat(join(img.rootfs, 'tmp'))).isDirectory()).toBe(true);
    expect((await lstat(join(img.rootfs, 'tmp'))).mode & 0o7777).toBe(0o1777);
    await expect(writeFile(join(img.rootfs, 'etc/os'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
    // Concurrent callers share the same preparation and path.
    expect((await Promise.all([cache.prepare(fnA), cache.prepare(fnA)])).map((p) => p.rootfs)).toEqual([img.rootfs, img.rootfs]);
  });

  it('a second image on the same base unpacks only its own layer', async () => {
    const events: LayerEvent[] = [];
    const cache = cacheFor(join(root, 'w2'), { mode: 'overlay' }, events);
    await cache.prepare(fnA);
    events.length = 0;
    const b = await cache.prepare(fnB);
    expect(events.filter((e) => e.type === 'layer-done').map((e) => e.index)).toEqual([1]);
    expect(events.filter((e) => e.type === 'layer-cached').map((e) => e.index)).toEqual([0]);
    expect(await readFile(join(b.rootfs, 'function/run'), 'utf8')).toBe('B');
    expect(await readFile(join(b.rootfs, 'etc/gone'), 'utf8')).toBe('lower');
  });

  it('survives a restart: a new cache on the same dir reuses layers and the mount', async () => {
    const dir = join(root, 'w3');
    await cacheFor(dir, { mode: 'overlay' }).prepare(fnB);
    const events: LayerEvent[] = [];
    const again = await cacheFor(dir, { mode: 'overlay' }, events).prepare(fnB);
    expect(events).toEqual([]);
    expect(await readFile(join(again.rootfs, 'function/run'), 'utf8')).toBe('B');
  });

  it('two caches (as two processes would) unpacking the same layers at once both succeed', async () => {
    const dir = join(root, 'w4');
    const [x, y] = await Promise.all([cacheFor(dir, { mode: 'flat' }).prepare(fnA), cacheFor(dir, { mode: 'flat' }).prepare(fnA)]);
    expect(x.rootfs).toBe(y.rootfs);
    expect(await readFile(join(x.rootfs, 'opt/new'), 'utf8')).toBe('A');
    expect((await readdir(join(dir, 'layers'))).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('evicts least recently used images over budget, never one in use, and drops layers no image needs', async () => {
    const dir = join(root, 'w5');
    const cache = cacheFor(dir, { mode: 'overlay', minIdleMs: 0, maxBytes: 1 << 30 });
    const held = await cache.acquire(fnA);
    const b = await cache.prepare(fnB);
    const ev = await cache.evict(0);
    expect(ev.images).toEqual([fnB]);
    expect(ev.layers).toHaveLength(1); // B's own layer; the base is still used by A
    expect(await isMountPoint(b.rootfs)).toBe(false);
    expect(await isMountPoint(held.rootfs)).toBe(true);
    held.release();
    expect((await cache.evict(0)).images).toEqual([fnA]);
    expect((await cache.usage()).layers).toBe(0);
  });

  it('flat mode gives the same tree as a plain directory', async () => {
    const cache = cacheFor(join(root, 'w6'), { mode: 'flat' });
    const img = await cache.prepare(fnA);
    expect(await isMountPoint(img.rootfs)).toBe(false);
    expect(await readFile(join(img.rootfs, 'etc/os'), 'utf8')).toBe('base');
    await expect(lstat(join(img.rootfs, 'etc/gone'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readdir(join(img.rootfs, 'opt'))).toEqual(['new']);
    expect((await lstat(join(img.rootfs, 'tmp'))).isDirectory()).toBe(true);
  });

  it('close() unmounts every image it mounted', async () => {
    const dir = join(root, 'w7');
    const cache = cacheFor(dir, { mode: 'overlay' });
    await cache.prepare(fnA);
    await cache.prepare(fnB);
    expect(await mountsUnder(dir)).toHaveLength(2);
    await cache.close();
    expect(await mountsUnder(dir)).toEqual([]);
  });
});
