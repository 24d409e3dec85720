import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { UnpackLimits } from './limits.js';
import { ImageStore } from './store.js';
import { listXattrs, patchHeader, rawTar, storeImage, type RawEntry, type TestLayer } from './testkit.js';
import { unpackImage } from './unpack.js';

const temps: string[] = [];
afterEach(async () => {
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

interface Ctx {
  store: ImageStore;
  /** Parent of dest: must be empty again after a failed unpack. */
  out: string;
  dest: string;
  /** A directory outside the tree that hostile layers aim at. */
  outside: string;
}

async function setup(): Promise<Ctx> {
  const root = await mkdtemp(join(tmpdir(), 'skiff-unpack-'));
  temps.push(root);
  const outside = join(root, 'outside');
  await mkdir(outside);
  await writeFile(join(outside, 'victim'), 'original');
  const out = join(root, 'out');
  await mkdir(out);
  return { store: await ImageStore.open(join(root, 'store')), out, dest: join(out, 'rootfs'), outside };
}

function isEntries(l: RawEntry[] | TestLayer): l is RawEntry[] {
  return Array.isArray(l);
}

async function unpack(ctx: Ctx, layers: Array<RawEntry[] | TestLayer>, limits?: Partial<UnpackLimits>) {
  const built: TestLayer[] = [];
  for (const l of layers) built.push(isEntries(l) ? { tar: await rawTar(l) } : l);
  const desc = await storeImage(ctx.store, built);
  return unpackImage(ctx.store, desc.digest, ctx.dest, limits ? { limits } : {});
}

/** Fails with `code` naming `text`, leaves nothing behind in out/, and the outside victim intact. */
async function expectRefused(ctx: Ctx, layers: Array<RawEntry[] | TestLayer>, code: string, text: string, limits?: Partial<UnpackLimits>) {
  await expect(unpack(ctx, layers, limits)).rejects.toMatchObject({ name: 'SkiffError', code, message: expect.stringContaining(text) });
  expect(await readdir(ctx.out)).toEqual([]);
  expect(await readFile(join(ctx.outside, 'victim'), 'utf8')).toBe('original');
}

const mode = async (p: string) => (await lstat(p)).mode & 0o7777;

describe('unpackImage basics', () => {
  it('applies layers in order and creates the mount points', async () => {
    const ctx = await setup();
    const res = await unpack(ctx, [
      [{ name: './' , type: 'directory' }, { name: './etc/', type: 'directory' }, { name: './etc/hostname', data: 'one' }, { name: 'bin/tool', mode: 0o755, data: '#!' }],
      [{ name: 'etc/hostname', data: 'two' }],
    ]);
    expect(res).toMatchObject({ dir: ctx.dest, layers: 2, entries: 5, dropped: 0 });
    expect(res.bytes).toBeGreaterThan(0);
    expect(await readFile(join(ctx.dest, 'etc/hostname'), 'utf8')).toBe('two');
    expect(await mode(join(ctx.dest, 'bin/tool'))).toBe(0o755);
    expect(await mode(join(ctx.dest, 'bin'))).toBe(0o755);
    for (const d of ['proc', 'sys', 'dev']) expect((await lstat(join(ctx.dest, d))).isDirectory()).toBe(true);
    expect(await mode(join(ctx.dest, 'tmp'))).toBe(0o1777);
    expect(await mode(ctx.dest)).toBe(0o755);
    expect(await readdir(ctx.out)).toEqual(['rootfs']);
  });

  it('reads uncompressed layers', async () => {
    const ctx = await setup();
    await unpack(ctx, [{ tar: await rawTar([{ name: 'plain', data: 'x' }]), gzip: false }]);
    expect(await readFile(join(ctx.dest, 'plain'), 'utf8')).toBe('x');
  });

  it('replaces a symlinked /tmp with a real directory (the runtime mounts over it)', async () => {
    const ctx = await setup();
    await unpack(ctx, [[{ name: 'tmp', type: 'symlink', linkname: ctx.outside }]]);
    const st = await lstat(join(ctx.dest, 'tmp'));
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o7777).toBe(0o1777);
  });

  it('applies directory modes at the end of the layer', async () => {
    const ctx = await setup();
    await unpack(ctx, [[{ name: 'ro/', type: 'directory', mode: 0o555 }, { name: 'ro/inside', data: 'x' }]]);
    expect(await mode(join(ctx.dest, 'ro'))).toBe(0o555);
    expect(await readFile(join(ctx.dest, 'ro/inside'), 'utf8')).toBe('x');
  });

  it('sets mtimes from the headers', async () => {
    const ctx = await setup();
    const when = new Date('2001-02-03T04:05:06Z');
    await unpack(ctx, [[{ name: 'd/', type: 'directory', mtime: when }, { name: 'd/f', data: 'x', mtime: when }]]);
    expect((await stat(join(ctx.dest, 'd/f'))).mtime.getTime()).toBe(when.getTime());
    expect((await stat(join(ctx.dest, 'd'))).mtime.getTime()).toBe(when.getTime());
  });
});

describe('rule 1: entry names', () => {
  for (const [name, why] of [['/etc/passwd', 'absolute'], ['../escape', "'..'"], ['a/../../escape', "'..'"], ['./a/./../..', "'..'"]] as const) {
    it(`refuses ${name} (${why})`, async () => {
      const ctx = await setup();
      await expectRefused(ctx, [[{ name, data: 'x' }]], 'SKIFF_LAYER_UNSAFE', JSON.stringify(name));
    });
  }

  it('refuses a NUL byte (carried in a pax path)', async () => {
    const ctx = await setup();
    await expectRefused(ctx, [[{ name: 'x', data: 'x', pax: { path: 'a\0b' } }]], 'SKIFF_LAYER_UNSAFE', 'NUL');
  });

  it('accepts ./foo and foo/', async () => {
    const ctx = await setup();
    await unpack(ctx, [[{ name: './foo', data: 'x' }, { name: 'dir/', type: 'directory' }, { name: 'dir//./bar', data: 'y' }]]);
    expect(await readFile(join(ctx.dest, 'foo'), 'utf8')).toBe('x');
    expect(await readFile(join(ctx.dest, 'dir/bar'), 'utf8')).toBe('y');
  });
});

describe('rule 2: never write through a symlink', () => {
  it('refuses a file under a symlinked parent in the same layer', async () => {
    const ctx = await setup();
    await expectRefused(ctx, [[{ name: 'etc', type: 'symlink', linkname: ctx.outside }, { name: 'etc/victim', data: 'owned' }]], 'SKIFF_LAYER_UNSAFE', 'etc/victim');
  });

  it('refuses a file under a symlink planted by a lower layer (relative target)', async () => {
    const ctx = await setup();
    await expectRefused(
      ctx,
      [[{ name: 'up', type: 'symlink', linkname: '../../outside' }], [{ name: 'up/victim', data: 'owned' }]],
      'SKIFF_LAYER_UNSAFE',
      'parent /up is a symlink',
    );
  });

  it('refuses a directory or symlink under a symlinked parent', async () => {
    const ctx = await setup();
    await expectRefused(ctx, [[{ name: 's', type: 'symlink', linkname: ctx.outside }, { name: 's/newdir/', type: 'directory' }]], 'SKIFF_LAYER_UNSAFE', 's/newdir');
    const ctx2 = await setup();
    await expectRefused(ctx2, [[{ name: 's', type: 'symlink', linkname: ctx2.outside }, { name: 's/l', type: 'symlink', linkname: '/' }]], 'SKIFF_LAYER_UNSAFE', 's/l');
    await expect(lstat(join(ctx2.outside, 'l'))).rejects.toThrow();
  });

  for (const name of ['.', './', '/.']) {
    it(`refuses a symlink entry named ${JSON.stringify(name)}`, async () => {
      const ctx = await setup();
      await expectRefused(ctx, [[{ name, type: 'symlink', linkname: ctx.outside }]], 'SKIFF_LAYER_UNSAFE', JSON.stringify(name));
    });
  }

  it('stores symlink targets as data, even absolute ones', async () => {
    const ctx = await setup();
    await unpack(ctx, [[{ name: 'abs', type: 'symlink', linkname: join(ctx.outside, 'victim') }, { name: 'rel', type: 'symlink', linkname: '../../../etc' }]]);
    expect(await readlink(join(ctx.dest, 'abs'))).toBe(join(ctx.outside, 'victim'));
    expect(await readlink(join(ctx.dest, 'rel'))).toBe('../../../etc');
  });

  it('replaces a symlink with a file instead of writing through it', async () => {
    const ctx = await setup();
    await unpack(ctx, [[{ name: 'f', type: 'symlink', linkname: join(ctx.outside, 'victim') }], [{ name: 'f', data: 'mine' }]]);
    expect((await lstat(join(ctx.dest, 'f'))).isFile()).toBe(true);
    expect(await readFile(join(ctx.dest, 'f'), 'utf8')).toBe('mine');
    expect(await readFile(join(ctx.outside, 'victim'), 'utf8')).toBe('original');
  });

  it('does not chmod through a directory replaced by a symlink later in the layer', async () => {
    const ctx = await setup();
    await unpack(ctx, [[{ name: 'd/', type: 'directory', mode: 0o700 }, { name: 'd', type: 'symlink', linkname: ctx.outside }]]);
    expect(await readlink(join(ctx.dest, 'd'))).toBe(ctx.outside);
    expect(await mode(ctx.outside)).not.toBe(0o700);
  });
});

describe('rule 3: hardlinks', () => {
  it('links to a regular file from this or a lower layer', async () => {
    const ctx = await setup();
    await unpack(ctx, [
      [{ name: 'bin/a', data: 'A' }],
      [{ name: 'bin/b', type: 'link', linkname: 'bin/a' }, { name: 'c', type: 'link', linkname: './bin/b' }],
    ]);
    const a = await stat(join(ctx.dest, 'bin/a'));
    expect((await stat(join(ctx.dest, 'bin/b'))).ino).toBe(a.ino);
    expect((await stat(join(ctx.dest, 'c'))).ino).toBe(a.ino);
  });

  const cases: Array<[string, (c: Ctx) => RawEntry[], string]> = [
    ['an escaping target', () => [{ name: 'l', type: 'link', linkname: '../outside/victim' }], "'..'"],
    ['an absolute target', (c) => [{ name: 'l', type: 'link', linkname: join(c.outside, 'victim') }], 'absolute'],
    ['a target through a symlink', (c) => [{ name: 's', type: 'symlink', linkname: c.outside }, { name: 'l', type: 'link', linkname: 's/victim' }], 'parent /s is a symlink'],
    ['a missing target', () => [{ name: 'l', type: 'link', linkname: 'nothing' }], 'not a regular file'],
    ['a symlink target', (c) => [{ name: 's', type: 'symlink', linkname: join(c.outside, 'victim') }, { name: 'l', type: 'link', linkname: 's' }], 'not a regular file'],
    ['a directory target', () => [{ name: 'd/', type: 'directory' }, { name: 'l', type: 'link', linkname: 'd' }], 'not a regular file'],
  ];
  for (const [what, entries, text] of cases) {
    it(`refuses ${what}`, async () => {
      const ctx = await setup();
      await expectRefused(ctx, [entries(ctx)], 'SKIFF_LAYER_UNSAFE', text);
    });
  }

  it('a file written over a hardlink gets a new inode, leaving the other name alone', async () => {
    const ctx = await setup();
    await unpack(ctx, [[{ name: 'a', data: 'A' }, { name: 'b', type: 'link', linkname: 'a' }], [{ name: 'b', data: 'B' }]]);
    expect(await readFile(join(ctx.dest, 'a'), 'utf8')).toBe('A');
    expect(await readFile(join(ctx.dest, 'b'), 'utf8')).toBe('B');
  });
});

describe('rule 4: whiteouts', () => {
  it('.wh.NAME removes NAME from lower layers', async () => {
    const ctx = await setup();
    await unpack(ctx, [
      [{ name: 'a/x', data: 'x' }, { name: 'a/y', data: 'y' }, { name: 'b/deep/file', data: 'z' }],
      [{ name: 'a/.wh.x' }, { name: '.wh.b' }],
    ]);
    expect(await readdir(join(ctx.dest, 'a'))).toEqual(['y']);
    await expect(lstat(join(ctx.dest, 'b'))).rejects.toThrow();
    await expect(lstat(join(ctx.dest, '.wh.b'))).rejects.toThrow();
  });

  it('opaque whiteout empties lower contents but keeps this layer\'s', async () => {
    const ctx = await setup();
    await unpack(ctx, [
      [{ name: 'd/old', data: '1' }, { name: 'd/sub/old2', data: '2' }, { name: 'other', data: '3' }],
      [{ name: 'd/new', data: 'n' }, { name: 'd/sub/mine', data: 'm' }, { name: 'd/.wh..wh..opq' }, { name: 'd/later', data: 'l' }],
    ]);
    expect((await readdir(join(ctx.dest, 'd'))).sort()).toEqual(['later', 'new', 'sub']);
    expect(await readdir(join(ctx.dest, 'd/sub'))).toEqual(['mine']);
    expect(await readFile(join(ctx.dest, 'other'), 'utf8')).toBe('3');
  });

  it('whiting out a symlink removes the link, not what it points at', async () => {
    const ctx = await setup();
    await unpack(ctx, [[{ name: 'ln', type: 'symlink', linkname: ctx.outside }], [{ name: '.wh.ln' }]]);
    await expect(lstat(join(ctx.dest, 'ln'))).rejects.toThrow();
    expect(await readdir(ctx.outside)).toEqual(['victim']);
  });

  it('refuses a whiteout through a symlinked parent', async () => {
    const ctx = await setup();
    await expectRefused(ctx, [[{ name: 's', type: 'symlink', linkname: ctx.outside }], [{ name: 's/.wh.victim' }]], 'SKIFF_LAYER_UNSAFE', 'symlink');
  });

  it('refuses an opaque whiteout in a symlinked directory', async () => {
    const ctx = await setup();
    await expectRefused(ctx, [[{ name: 's', type: 'symlink', linkname: ctx.outside }], [{ name: 's/.wh..wh..opq' }]], 'SKIFF_LAYER_UNSAFE', 'symlink');
  });

  for (const name of ['../.wh.victim', '.wh...', '.wh..', 'a/.wh.']) {
    it(`refuses whiteout ${name}`, async () => {
      const ctx = await setup();
      await expectRefused(ctx, [[{ name: 'a/keep', data: 'k' }], [{ name }]], 'SKIFF_LAYER_UNSAFE', JSON.stringify(name));
    });
  }
});

describe('rule 5: duplicates in one layer', () => {
  it('the later file wins', async () => {
    const ctx = await setup();
    await unpack(ctx, [[{ name: 'f', data: 'first' }, { name: 'f', data: 'second' }]]);
    expect(await readFile(join(ctx.dest, 'f'), 'utf8')).toBe('second');
  });

  it('a directory replaces a file, and a file a directory', async () => {
    const ctx = await setup();
    await unpack(ctx, [[{ name: 'p', data: 'file' }, { name: 'p/', type: 'directory' }, { name: 'p/in', data: 'x' }, { name: 'q/in', data: 'y' }, { name: 'q', data: 'file' }]]);
    expect((await lstat(join(ctx.dest, 'p'))).isDirectory()).toBe(true);
    expect(await readFile(join(ctx.dest, 'p/in'), 'utf8')).toBe('x');
    expect(await readFile(join(ctx.dest, 'q'), 'utf8')).toBe('file');
  });
});

describe('rule 6: devices, special bits, xattrs', () => {
  it('drops device nodes and FIFOs and counts them', async () => {
    const ctx = await setup();
    const res = await unpack(ctx, [[
      { name: 'dev/null', type: 'character-device' },
      { name: 'dev/sda', type: 'block-device' },
      { name: 'pipe', type: 'fifo' },
      { name: 'ok', data: 'x' },
    ]]);
    expect(res.dropped).toBe(3);
    expect(await readdir(join(ctx.dest, 'dev'))).toEqual([]);
    await expect(lstat(join(ctx.dest, 'pipe'))).rejects.toThrow();
  });

  it('strips setuid/setgid, keeps sticky only on directories', async () => {
    const ctx = await setup();
    await unpack(ctx, [[
      { name: 'suid', mode: 0o4755, data: 'x' },
      { name: 'sgid', mode: 0o2755, data: 'x' },
      { name: 'stickyfile', mode: 0o1644, data: 'x' },
      { name: 'shared/', type: 'directory', mode: 0o3777 },
    ]]);
    expect(await mode(join(ctx.dest, 'suid'))).toBe(0o755);
    expect(await mode(join(ctx.dest, 'sgid'))).toBe(0o755);
    expect(await mode(join(ctx.dest, 'stickyfile'))).toBe(0o644);
    expect(await mode(join(ctx.dest, 'shared'))).toBe(0o1777);
  });

  it('ignores SCHILY.xattr records (no file capabilities)', async () => {
    const ctx = await setup();
    await unpack(ctx, [[{ name: 'cap', mode: 0o755, data: 'x', pax: { 'SCHILY.xattr.security.capability': 'AQAAAgAgAAAAAAAAAAAAAAAAAAA=', 'SCHILY.xattr.user.note': 'hi' } }]]);
    expect(listXattrs(join(ctx.dest, 'cap'))).toEqual([]);
  });
});

describe('rule 7: limits', () => {
  const big = Buffer.alloc(256 * 1024, 1);
  const cases: Array<[keyof UnpackLimits, Partial<UnpackLimits>, RawEntry[]]> = [
    ['maxBytes', { maxBytes: 64 * 1024 }, [{ name: 'big', data: big }]],
    ['maxEntries', { maxEntries: 3 }, [{ name: 'a', data: '' }, { name: 'b', data: '' }, { name: 'c', data: '' }, { name: 'd', data: '' }]],
    ['maxPathLength', { maxPathLength: 50 }, [{ name: `${'x'.repeat(60)}`, data: '' }]],
    ['maxDepth', { maxDepth: 4 }, [{ name: 'a/b/c/d/e', data: '' }]],
  ];
  for (const [limit, limits, entries] of cases) {
    it(`trips ${limit} and removes the partial tree`, async () => {
      const ctx = await setup();
      await expectRefused(ctx, [[{ name: 'first', data: 'x' }], entries], 'SKIFF_LAYER_UNSAFE', limit, limits);
    });
  }

  it('stops a gzip bomb while streaming, not after', async () => {
    const ctx = await setup();
    // 64 MiB of zeros compresses to ~64 KiB; the limit must stop it long before the end.
    const tarBytes = await rawTar([{ name: 'zeros', data: Buffer.alloc(64 * 1024 * 1024) }]);
    await expectRefused(ctx, [{ tar: tarBytes }], 'SKIFF_LAYER_UNSAFE', 'maxBytes', { maxBytes: 1024 * 1024 });
  });
});

describe('rule 8: corrupt blobs', () => {
  it('refuses a layer whose blob bytes changed on disk', async () => {
    const ctx = await setup();
    const tarBytes = await rawTar([{ name: 'f', data: 'hello' }]);
    const desc = await storeImage(ctx.store, [{ tar: tarBytes }]);
    const img = await ctx.store.image(desc.digest);
    const layer = img.manifest.layers[0]!;
    const path = ctx.store.blobPath(layer.digest);
    const bytes = await readFile(path);
    bytes[bytes.length - 9] = (bytes[bytes.length - 9]! + 1) % 256; // inside the gzip CRC/size trailer
    await writeFile(path, bytes);
    await expect(unpackImage(ctx.store, desc.digest, ctx.dest)).rejects.toMatchObject({ code: 'SKIFF_IMAGE_INVALID', message: expect.stringContaining(layer.digest) });
    expect(await readdir(ctx.out)).toEqual([]);
  });

  it('refuses a descriptor size that does not match', async () => {
    const ctx = await setup();
    const tarBytes = await rawTar([{ name: 'f', data: 'hello' }]);
    await expectRefused(ctx, [{ tar: tarBytes, descriptor: { size: 10 } }], 'SKIFF_IMAGE_INVALID', 'declared 10 bytes');
  });

  it('refuses a diffID that does not match the uncompressed tar', async () => {
    const ctx = await setup();
    const tarBytes = await rawTar([{ name: 'f', data: 'hello' }]);
    await expectRefused(ctx, [{ tar: tarBytes, diffId: `sha256:${'0'.repeat(64)}` }], 'SKIFF_IMAGE_INVALID', 'diffID');
  });

  it('refuses truncated gzip', async () => {
    const ctx = await setup();
    const tarBytes = await rawTar([{ name: 'f', data: Buffer.alloc(100_000, 7) }]);
    const gz = gzipSync(tarBytes);
    await expectRefused(ctx, [{ tar: tarBytes, blob: gz.subarray(0, gz.length - 20) }], 'SKIFF_IMAGE_INVALID', 'layer 0');
  });

  it('refuses garbage after the gzip stream', async () => {
    const ctx = await setup();
    const tarBytes = await rawTar([{ name: 'f', data: 'hello' }]);
    await expectRefused(ctx, [{ tar: tarBytes, blob: Buffer.concat([gzipSync(tarBytes), Buffer.from('trailing garbage')]) }], 'SKIFF_IMAGE_INVALID', 'layer 0');
  });

  it('refuses garbage after the tar end-of-archive, even with a matching diffID', async () => {
    const ctx = await setup();
    const tarBytes = Buffer.concat([await rawTar([{ name: 'f', data: 'hello' }]), Buffer.alloc(512, 0x41)]);
    await expectRefused(ctx, [{ tar: tarBytes }], 'SKIFF_IMAGE_INVALID', 'layer 0');
  });

  it('refuses a tar cut mid-entry', async () => {
    const ctx = await setup();
    const tarBytes = (await rawTar([{ name: 'f', data: Buffer.alloc(4096, 1) }])).subarray(0, 1536);
    await expectRefused(ctx, [{ tar: tarBytes }], 'SKIFF_IMAGE_INVALID', 'layer 0');
  });
});

describe('rule 9: owners', () => {
  it('chowns entries to their uid/gid', async () => {
    const ctx = await setup();
    await unpack(ctx, [[{ name: 'home/', type: 'directory', uid: 1000, gid: 1001 }, { name: 'home/f', data: 'x', uid: 1000, gid: 1001 }, { name: 'home/l', type: 'symlink', linkname: 'f', uid: 1002, gid: 1003 }]]);
    if (process.getuid?.() !== 0) return; // chown needs root
    expect(await stat(join(ctx.dest, 'home'))).toMatchObject({ uid: 1000, gid: 1001 });
    expect(await stat(join(ctx.dest, 'home/f'))).toMatchObject({ uid: 1000, gid: 1001 });
    expect(await lstat(join(ctx.dest, 'home/l'))).toMatchObject({ uid: 1002, gid: 1003 });
  });

  it('uses pax uid/gid records', async () => {
    const ctx = await setup();
    await unpack(ctx, [[{ name: 'f', data: 'x', pax: { uid: '70000', gid: '70001' } }]]);
    if (process.getuid?.() !== 0) return;
    expect(await stat(join(ctx.dest, 'f'))).toMatchObject({ uid: 70000, gid: 70001 });
  });

  it('refuses a pax uid of 2^31 or more', async () => {
    const ctx = await setup();
    await expectRefused(ctx, [[{ name: 'f', data: 'x', pax: { uid: String(2 ** 31) } }]], 'SKIFF_LAYER_UNSAFE', 'uid');
  });

  it('refuses a base-256 gid of 2^32-1 in the header', async () => {
    const ctx = await setup();
    const big = Buffer.from([0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    const tarBytes = patchHeader(await rawTar([{ name: 'f', data: 'x' }]), 0, 'gid', big);
    await expectRefused(ctx, [{ tar: tarBytes }], 'SKIFF_LAYER_UNSAFE', 'gid');
  });

  it('refuses a negative base-256 uid', async () => {
    const ctx = await setup();
    const neg = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
    const tarBytes = patchHeader(await rawTar([{ name: 'd/', type: 'directory' }]), 0, 'uid', neg);
    await expectRefused(ctx, [{ tar: tarBytes }], 'SKIFF_LAYER_UNSAFE', 'uid');
  });
});

describe('rule 10: concurrent unpacks', () => {
  it('two unpacks of one image to one dest both succeed and leave one tree', async () => {
    const ctx = await setup();
    const entries: RawEntry[] = [];
    for (let i = 0; i < 200; i++) entries.push({ name: `d${i % 10}/f${i}`, data: `file ${i}` });
    const desc = await storeImage(ctx.store, [{ tar: await rawTar(entries) }]);
    const [a, b] = await Promise.all([unpackImage(ctx.store, desc.digest, ctx.dest), unpackImage(ctx.store, desc.digest, ctx.dest)]);
    expect(a.dir).toBe(ctx.dest);
    expect(b.dir).toBe(ctx.dest);
    expect(await readdir(ctx.out)).toEqual(['rootfs']);
    expect((await readdir(ctx.dest)).sort()).toEqual([...Array.from({ length: 10 }, (_, i) => `d${i}`), 'dev', 'proc', 'sys', 'tmp'].sort());
    expect(await readdir(join(ctx.dest, 'd3'))).toHaveLength(20);
    expect(await readFile(join(ctx.dest, 'd7/f197'), 'utf8')).toBe('file 197');
    // A later call finds the tree and leaves it alone.
    const c = await unpackImage(ctx.store, desc.digest, ctx.dest);
    expect(c).toMatchObject({ dir: ctx.dest, entries: 0 });
  });
});

describe('unsupported input', () => {
  it('refuses a layer media type it cannot read', async () => {
    const ctx = await setup();
    const tarBytes = await rawTar([{ name: 'f', data: 'x' }]);
    await expectRefused(ctx, [{ tar: tarBytes, descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' } }], 'SKIFF_IMAGE_INVALID', 'zstd');
  });

  it('names a manifest that is not in the store', async () => {
    const ctx = await setup();
    const missing = `sha256:${'a'.repeat(64)}`;
    await expect(unpackImage(ctx.store, missing, ctx.dest)).rejects.toMatchObject({ code: 'SKIFF_IMAGE_NOT_FOUND', message: expect.stringContaining(missing) });
  });
});
