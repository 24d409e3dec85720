// docs/security.md #5, #6 and #9 through both public unpack paths (flat, and layer cache + flatten).
import { lstat, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attackContext, listXattrs, patchHeader, rawTar, unpackVia, type RawEntry, type TestLayer, type UnpackPath } from '../../services/image/src/testkit.js';

const roots: string[] = [];
afterAll(async () => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));
const privileged = process.getuid?.() === 0;

async function ctx() {
  const c = await attackContext();
  roots.push(c.root);
  return c;
}

async function unpack(path: UnpackPath, layers: Array<RawEntry[] | TestLayer>, run?: object) {
  const c = await ctx();
  const built = await Promise.all(layers.map(async (l) => (Array.isArray(l) ? { tar: await rawTar(l) } : l)));
  const dest = await unpackVia(path, c.store, c.root, built, run ? { run } : {});
  return { dest, c };
}

async function refused(path: UnpackPath, layers: Array<RawEntry[] | TestLayer>, code: string, text: string, run?: object) {
  const c = await ctx();
  const built = await Promise.all(layers.map(async (l) => (Array.isArray(l) ? { tar: await rawTar(l) } : l)));
  await expect(unpackVia(path, c.store, c.root, built, run ? { run } : {})).rejects.toMatchObject({ name: 'SkiffError', code, message: expect.stringContaining(text) });
  expect(await c.leftovers()).toEqual([]);
}

describe.each<UnpackPath>(privileged ? ['flat', 'layered'] : ['flat'])('%s unpack (layered needs root)', (path) => {
  describe('item 5: duplicates', () => {
    it('a duplicate path in one layer: the later entry wins', async () => {
      const { dest } = await unpack(path, [[{ name: 'f', data: 'first' }, { name: 'f', data: 'second' }]]);
      expect(await readFile(join(dest, 'f'), 'utf8')).toBe('second');
    });
    it('a file then a directory at the same path: the directory replaces the file', async () => {
      const { dest } = await unpack(path, [[{ name: 'p', data: 'file' }, { name: 'p/', type: 'directory' }, { name: 'p/in', data: 'x' }]]);
      expect((await lstat(join(dest, 'p'))).isDirectory()).toBe(true);
      expect(await readFile(join(dest, 'p/in'), 'utf8')).toBe('x');
    });
    it('an entry under a path a lower layer has as a file is refused: no directory made as a parent replaces the file', () =>
      refused(path, [[{ name: 'a', data: 'lower' }], [{ name: 'a/y', data: 'x' }]], 'SKIFF_LAYER_UNSAFE', 'not a directory'));
    it('an entry under a lower file is refused even when a layer in between only whited out something under it', () =>
      refused(path, [[{ name: 'a', data: 'lower' }], [{ name: 'a/.wh.x' }], [{ name: 'a/y', data: 'x' }]], 'SKIFF_LAYER_UNSAFE', 'not a directory'));
    it('a directory entry over a lower file replaces it', async () => {
      const { dest } = await unpack(path, [[{ name: 'a', data: 'lower' }], [{ name: 'a/', type: 'directory' }, { name: 'a/y', data: 'x' }]]);
      expect(await readFile(join(dest, 'a/y'), 'utf8')).toBe('x');
    });
    it('a symlink then a file at the same path: the file replaces the link, the link target is untouched', async () => {
      const { dest, c } = await unpack(path, [[{ name: "p", type: "symlink", linkname: "/etc/shadow-of-host" }, { name: "p", data: "mine" }]]);
      expect((await lstat(join(dest, 'p'))).isFile()).toBe(true);
      expect(await readFile(c.victim, 'utf8')).toBe('original');
    });
  });

  describe('item 6: devices, FIFOs, set-id bits, capabilities', () => {
    it('drops character and block devices and FIFOs', async () => {
      const { dest } = await unpack(path, [[{ name: 'null', type: 'character-device' }, { name: 'sda', type: 'block-device' }, { name: 'pipe', type: 'fifo' }, { name: 'keep', data: 'k' }]]);
      const mountPoints = ['dev', 'proc', 'sys', 'tmp']; // the flat unpacker adds these
      expect((await readdir(dest)).filter((n) => !mountPoints.includes(n))).toEqual(['keep']);
    });
    it('strips setuid and setgid bits, keeps sticky on directories only', async () => {
      const { dest } = await unpack(path, [[{ name: 'suid', mode: 0o4755, data: 'x' }, { name: 'sgid', mode: 0o2755, data: 'x' }, { name: 'sticky', mode: 0o1755, data: 'x' }, { name: 'sd/', type: 'directory', mode: 0o3777 }]]);
      const mode = async (n: string) => (await lstat(join(dest, n))).mode & 0o7777;
      expect(await mode('suid')).toBe(0o755);
      expect(await mode('sgid')).toBe(0o755);
      expect(await mode('sticky')).toBe(0o755);
      expect(await mode('sd')).toBe(0o1777);
    });
    it('ignores file capabilities carried in pax xattr records', async () => {
      const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex').toString('latin1');
      const { dest, c } = await unpack(path, [[{ name: 'ping', mode: 0o755, data: 'x', pax: { 'SCHILY.xattr.security.capability': cap, 'SCHILY.xattr.user.note': 'hi' } }]]);
      // the result, and on the layered path the layer cache too (the worker mounts it as an overlay lower layer)
      const copies = (await readdir(c.root, { recursive: true })).filter((f) => f === 'ping' || f.endsWith('/ping'));
      expect(copies.length, copies.join(' ')).toBe(path === 'flat' ? 1 : 2);
      for (const f of copies) expect(listXattrs(join(c.root, f)), f).toEqual([]);
      expect((await lstat(join(dest, 'ping'))).mode & 0o7777).toBe(0o755);
    });
  });

  describe('item 9: owners beyond 2^31', () => {
    it('refuses a pax uid of 2^31', () => refused(path, [[{ name: 'f', data: 'x', pax: { uid: String(2 ** 31) } }]], 'SKIFF_LAYER_UNSAFE', 'out of range'));
    it('refuses a pax gid of 2^32', () => refused(path, [[{ name: 'f', data: 'x', pax: { gid: String(2 ** 32) } }]], 'SKIFF_LAYER_UNSAFE', 'out of range'));
    it('refuses a base-256 uid of 2^32-1 in the header', async () => {
      const tar = patchHeader(await rawTar([{ name: 'f', data: 'x' }]), 0, 'uid', Buffer.from([0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]));
      await refused(path, [{ tar }], 'SKIFF_LAYER_UNSAFE', 'out of range');
    });
    it('refuses a negative base-256 gid in the header', async () => {
      const tar = patchHeader(await rawTar([{ name: 'f', data: 'x' }]), 0, 'gid', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]));
      await refused(path, [{ tar }], 'SKIFF_LAYER_UNSAFE', 'out of range');
    });
    it('refuses a User of 4294967295 in the image config', () =>
      refused(path, [[{ name: 'f', data: 'x' }]], 'SKIFF_IMAGE_INVALID', 'out of range', { Cmd: ['/bin/sh'], User: '4294967295:0' }));
    it('refuses a group of 2^31 in the image config', () =>
      refused(path, [[{ name: 'f', data: 'x' }]], 'SKIFF_IMAGE_INVALID', 'out of range', { Cmd: ['/bin/sh'], User: '0:2147483648' }));
    it.skipIf(!privileged)('applies ids in range (needs root to chown)', async () => {
      const { dest } = await unpack(path, [[{ name: 'f', data: 'x', uid: 1000, gid: 2000 }, { name: 'g', data: 'y', pax: { uid: String(2 ** 31 - 1), gid: '7' } }]]);
      expect(await lstat(join(dest, 'f'))).toMatchObject({ uid: 1000, gid: 2000 });
      expect(await lstat(join(dest, 'g'))).toMatchObject({ uid: 2 ** 31 - 1, gid: 7 });
    });
  });
});

