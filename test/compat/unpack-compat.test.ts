// Images built by tools no one here wrote (umoci, buildah, skopeo), unpacked by Skiff (the
// CLI, i.e. layer cache + flatten, and the library's unpackImage) and by `umoci unpack` as
// the reference: the trees must match path for path, modulo the differences Skiff documents
// (services/image/README.md rule 6 and rule 1; see compareOptions in tools.ts).
import { chmodSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageStore, LayerCache, mountOverlay, unmount, unpackLayers } from '../../services/image/src/index.js';
import { rawTar, type RawEntry } from '../../services/image/src/testkit.js';
import { cleanTemps, have, isRoot, manifests, sh, skiffCliUnpack, skiffLibUnpack, tempDir, umociUnpack } from './tools.js';

afterAll(cleanTemps);

/** One umoci layer: unpack the image's current state, change its rootfs with a shell script, repack. */
function umociLayer(layout: string, ref: string, script: string): void {
  const work = tempDir('skiff-compat-bundle-');
  const bundle = join(work, 'b');
  sh('umoci', ['unpack', '--image', `${layout}:${ref}`, bundle]);
  sh('sh', ['-euc', script], { cwd: join(bundle, 'rootfs') });
  sh('umoci', ['repack', '--image', `${layout}:${ref}`, bundle]);
  rmSync(work, { recursive: true, force: true });
}

/** Every way Skiff unpacks, each compared with `umoci unpack` of the same layout:ref. */
function expectSameTrees(layout: string, ref: string): { cli: string; lib: string; reference: string } {
  const root = tempDir();
  const reference = umociUnpack(layout, ref, join(root, 'bundle'));
  const cli = skiffCliUnpack(layout, ref, join(root, 'cli'), join(root, 'data'));
  const m = manifests(reference, cli);
  expect(m.skiff, 'skiff image unpack (CLI) vs umoci unpack').toEqual(m.ref);
  return { cli, lib: join(root, 'lib'), reference };
}

async function expectLibSame(layout: string, ref: string, reference: string, lib: string): Promise<void> {
  await skiffLibUnpack(layout, ref, lib);
  const m = manifests(reference, lib);
  expect(m.skiff, 'unpackImage (library) vs umoci unpack').toEqual(m.ref);
}

const LAYER1 = `
mkdir -p a/b/c/deep etc gone opq keep/sub
echo deep > a/b/c/deep/file
echo passwd > etc/passwd
echo 1 > gone/one; echo 2 > gone/two
echo old1 > opq/old1; mkdir opq/oldsub; echo old2 > opq/oldsub/old2
echo del > del.txt
echo kept > keep/sub/kept
: > empty
echo linked > hl1; ln hl1 hl2; ln hl1 a/b/hl3
echo secret > secret; chmod 0600 secret
mkdir d751; chmod 0751 d751
mkdir sticky; chmod 01777 sticky
echo suid > suid; chmod 04755 suid
echo sgid > sgid; chmod 02755 sgid
mkdir sgiddir; chmod 02775 sgiddir
echo own > owned; chown 1000:1000 owned
mkdir nobody; chown 65534:65534 nobody; echo n > nobody/f; chown 65534:65534 nobody/f
ln -s ../etc/passwd a/rel
ln -s /etc/passwd abs
ln -s does/not/exist dangling
ln -s a/b dirlink
echo tochange > mode-later
`;

const LAYER2 = `
rm del.txt
rm -rf gone
rm -rf opq; mkdir opq; echo new > opq/new
chmod 0640 mode-later; chown 1000:65534 mode-later
rm a/b/c/deep/file; mkdir a/b/c/deep/file; echo nested > a/b/c/deep/file/inner
rm abs; ln -s /bin/sh abs
rm -rf keep/sub; echo file-now > keep/sub
echo layer2 > keep/added
mkfifo fifo
`;

describe.skipIf(!isRoot || !have('umoci'))('umoci-built images (several layers; skipped unless root with umoci)', () => {
  let layout = '';
  beforeAll(() => {
    layout = join(tempDir(), 'img');
    sh('umoci', ['init', '--layout', layout]);
    sh('umoci', ['new', '--image', `${layout}:v1`]);
    umociLayer(layout, 'v1', LAYER1);
    umociLayer(layout, 'v1', LAYER2);
    // A third layer made by GNU tar and added verbatim: an opaque directory marker, which
    // umoci repack never writes (it lists each deleted child), plus a new file under it.
    const src = tempDir();
    mkdirSync(join(src, 'keep'), { mode: 0o755 });
    chmodSync(src, 0o755);
    writeFileSync(join(src, 'keep', '.wh..wh..opq'), '');
    writeFileSync(join(src, 'keep', 'fresh'), 'after opaque\n');
    writeFileSync(join(src, '.wh.dangling'), '');
    sh('tar', ['--numeric-owner', '--owner=0', '--group=0', '--mtime=@1000000000', '--sort=name', '-cf', join(src, '..', 'layer3.tar'), '-C', src, '.']);
    sh('umoci', ['raw', 'add-layer', '--image', `${layout}:v1`, join(src, '..', 'layer3.tar')]);
  });

  it('skiff image unpack and unpackImage give the tree umoci unpack gives', async () => {
    const { lib, reference, cli } = expectSameTrees(layout, 'v1');
    await expectLibSame(layout, 'v1', reference, lib);

    // The cases this image exists for, spelled out (the manifest comparison covers them too).
    for (const tree of [cli, lib]) {
      const st = (p: string) => lstatSync(join(tree, p));
      expect(() => st('del.txt')).toThrow(); // whiteout from layer 2
      expect(() => st('gone')).toThrow();
      expect(() => st('opq/old1')).toThrow(); // directory removed and recreated
      expect(readFileSync(join(tree, 'opq/new'), 'utf8')).toBe('new\n');
      expect(() => st('keep/sub')).toThrow(); // opaque marker in layer 3 hid layer 2's keep/*
      expect(() => st('keep/added')).toThrow();
      expect(readFileSync(join(tree, 'keep/fresh'), 'utf8')).toBe('after opaque\n');
      expect(() => st('dangling')).toThrow();
      expect(st('hl1').ino).toBe(st('hl2').ino);
      expect(st('hl1').ino).toBe(st('a/b/hl3').ino);
      expect(st('secret').mode & 0o7777).toBe(0o600);
      expect(st('d751').mode & 0o7777).toBe(0o751);
      expect(st('sticky').mode & 0o7777).toBe(0o1777);
      expect(st('owned').uid).toBe(1000);
      expect(st('nobody').gid).toBe(65534);
      expect(st('mode-later').mode & 0o7777).toBe(0o640);
      expect(st('a/b/c/deep/file').isDirectory()).toBe(true);
      // Documented difference (README rule 6): set-id bits stripped; umoci keeps them.
      expect(st('suid').mode & 0o7777).toBe(0o755);
      expect(st('sgid').mode & 0o7777).toBe(0o755);
      expect(st('sgiddir').mode & 0o7777).toBe(0o775);
      // Documented difference (rule 6): FIFOs (and devices) are dropped; umoci makes them.
      expect(() => st('fifo')).toThrow();
    }
    expect(lstatSync(join(reference, 'suid')).mode & 0o7777).toBe(0o4755);
    expect(lstatSync(join(reference, 'fifo')).isFIFO()).toBe(true);
  });
});

/** Adds each list of entries as one layer, verbatim (umoci repack would never write these). */
async function rawLayers(layout: string, ref: string, layers: RawEntry[][]): Promise<void> {
  const dir = tempDir();
  for (const [i, entries] of layers.entries()) {
    writeFileSync(join(dir, `${i}.tar`), await rawTar(entries));
    sh('umoci', ['raw', 'add-layer', '--image', `${layout}:${ref}`, join(dir, `${i}.tar`)]);
  }
}

describe.skipIf(!isRoot || !have('umoci'))('whiteouts under lower files and missing paths (skipped unless root with umoci)', () => {
  let layout = '';
  beforeAll(async () => {
    layout = join(tempDir(), 'img');
    sh('umoci', ['init', '--layout', layout]);
    sh('umoci', ['new', '--image', `${layout}:v1`]);
    await rawLayers(layout, 'v1', [
      [
        { name: 'a', data: 'lower a' },
        { name: 'a2', type: 'link', linkname: 'a' }, // a hard-link group the whiteout below must leave whole
        { name: 'b', data: 'lower b' },
        { name: 'sub/', type: 'directory', mode: 0o750 },
        { name: 'sub/f', data: 'lower f' },
        { name: 'etc/', type: 'directory', mode: 0o711, uid: 1000, gid: 1000 },
        { name: 'etc/gone', data: 'x' },
        { name: 'etc/stay', data: 'y' },
        { name: 'root/', type: 'directory', mode: 0o700 },
      ],
      // No directory entries: every parent here is made only for the entry below it.
      [
        { name: 'a/.wh.x' }, // under a lower file
        { name: 'b/.wh..wh..opq' }, // opaque marker on a lower file
        { name: 'sub/f/.wh.y' }, // under a lower file, one level down
        { name: 'c/.wh.x' }, // under a path no layer has
        { name: 'd/e/.wh..wh..opq' },
        { name: 'etc/.wh.gone' }, // under a lower directory: removes, keeps its mode and owner
        { name: 'root/.profile', data: 'p' }, // a file under a lower 0700 directory
      ],
    ]);
  });

  it('the flat unpacker, the CLI (layer cache + flatten) and the overlay mount give the tree umoci gives', async () => {
    const { lib, reference, cli } = expectSameTrees(layout, 'v1');
    await expectLibSame(layout, 'v1', reference, lib);
    const root = tempDir();
    const store = await ImageStore.open(layout);
    const cache = new LayerCache(join(root, 'layers'));
    const { layers } = await unpackLayers(store, (await store.resolve('v1')).digest, cache);
    const mnt = join(root, 'mnt');
    mkdirSync(mnt);
    await mountOverlay(layers.map((l) => l.dir), mnt, cache.root);
    try {
      const m = manifests(reference, mnt);
      expect(m.skiff, 'overlay mount of the layer cache vs umoci unpack').toEqual(m.ref);
      // Spelled out (the manifests cover it too): whiteouts under files removed nothing, made nothing.
      for (const tree of [reference, cli, lib, mnt]) {
        expect(readFileSync(join(tree, 'a'), 'utf8')).toBe('lower a');
        expect(readFileSync(join(tree, 'sub/f'), 'utf8')).toBe('lower f');
        expect(() => lstatSync(join(tree, 'c'))).toThrow();
        expect(() => lstatSync(join(tree, 'etc/gone'))).toThrow();
        expect(lstatSync(join(tree, 'etc'))).toMatchObject({ mode: 0o40711, uid: 1000 });
        expect(lstatSync(join(tree, 'root')).mode & 0o7777).toBe(0o700);
      }
    } finally {
      await unmount(mnt);
    }
  });
});

/** buildah as root without a daemon: vfs storage in a private root, chroot isolation. */
function buildah(root: string, args: string[]): string {
  return sh('buildah', ['--root', join(root, 'storage'), '--runroot', join(root, 'run'), '--storage-driver', 'vfs', ...args], { env: { BUILDAH_ISOLATION: 'chroot', STORAGE_DRIVER: 'vfs' } }).trim();
}

describe.skipIf(!isRoot || !have('buildah') || !have('umoci'))('buildah-built images (skipped unless root with buildah and umoci)', () => {
  let layout = '';
  let root = '';
  beforeAll(() => {
    root = tempDir('skiff-compat-buildah-');
    layout = join(root, 'oci');
    const c1 = buildah(root, ['from', '--quiet', '--name', 'one', 'scratch']);
    const m1 = buildah(root, ['mount', c1]);
    sh('sh', ['-euc', LAYER1], { cwd: m1 });
    buildah(root, ['config', '--cmd', '/bin/sh', c1]);
    buildah(root, ['commit', '--quiet', c1, `oci:${layout}:one`]);
    // The second layer on top of the first, through buildah's own storage (an oci: source
    // would name the image after its path, which must be lowercase).
    buildah(root, ['commit', '--quiet', c1, 'localhost/skiff-compat-one']);
    const c2 = buildah(root, ['from', '--quiet', '--name', 'two', 'localhost/skiff-compat-one']);
    const m2 = buildah(root, ['mount', c2]);
    sh('sh', ['-euc', LAYER2.replace('mkfifo fifo', '')], { cwd: m2 });
    buildah(root, ['commit', '--quiet', c2, `oci:${layout}:two`]);
  });
  afterAll(() => {
    if (root) spawnCleanup(root);
  });

  it('single layer: same tree as umoci unpack', async () => {
    const { lib, reference } = expectSameTrees(layout, 'one');
    await expectLibSame(layout, 'one', reference, lib);
  });

  it('two layers with deletions and replacements: same tree as umoci unpack', async () => {
    const { lib, reference } = expectSameTrees(layout, 'two');
    await expectLibSame(layout, 'two', reference, lib);
  });
});

function spawnCleanup(root: string): void {
  try {
    buildah(root, ['rm', '--all']);
  } catch {
    // nothing mounted
  }
  rmSync(root, { recursive: true, force: true });
}

describe.skipIf(!isRoot || !have('skopeo') || !have('umoci'))('images copied by skopeo (skipped unless root with skopeo and umoci)', () => {
  let src = '';
  beforeAll(() => {
    src = join(tempDir(), 'src');
    sh('umoci', ['init', '--layout', src]);
    sh('umoci', ['new', '--image', `${src}:v1`]);
    umociLayer(src, 'v1', LAYER1);
    umociLayer(src, 'v1', LAYER2);
  });

  const variants: Array<[string, string[]]> = [
    ['as is', []],
    ['recompressed (gzip level 9)', ['--dest-compress', '--dest-compress-format', 'gzip', '--dest-compress-level', '9']],
    ['decompressed (plain tar layers)', ['--dest-decompress', '--dest-oci-accept-uncompressed-layers']],
  ];
  for (const [what, flags] of variants) {
    it(`${what}: same tree as umoci unpack`, async () => {
      const dst = join(tempDir(), 'dst');
      sh('skopeo', ['copy', '--quiet', ...flags, `oci:${src}:v1`, `oci:${dst}:copied`]);
      const { lib, reference } = expectSameTrees(dst, 'copied');
      await expectLibSame(dst, 'copied', reference, lib);
    });
  }
});
