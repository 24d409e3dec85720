// docs/security.md #1, #2, #3 and #4, through both public unpack paths: the flat unpacker and the layer
// cache + flatten (what `skiff image unpack` and the worker use).
import { lstat, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { attackContext, rawTar, unpackVia, type AttackContext, type RawEntry, type UnpackPath } from '../../services/image/src/testkit.js';

const roots: string[] = [];
afterAll(async () => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));

const privileged = process.getuid?.() === 0;
type Layers = (ctx: AttackContext) => RawEntry[][];

async function refused(path: UnpackPath, layers: Layers, text: string, code = 'SKIFF_LAYER_UNSAFE'): Promise<void> {
  const ctx = await attackContext();
  roots.push(ctx.root);
  const built = await Promise.all(layers(ctx).map(async (l) => ({ tar: await rawTar(l) })));
  await expect(unpackVia(path, ctx.store, ctx.root, built)).rejects.toMatchObject({ name: 'SkiffError', code, message: expect.stringContaining(text) });
  expect(await ctx.leftovers()).toEqual([]);
  expect(await readFile(ctx.victim, 'utf8')).toBe('original');
}

const outside = (ctx: AttackContext) => `${ctx.root}/outside`;

describe.each<UnpackPath>(privileged ? ['flat', 'layered'] : ['flat'])('%s unpack (layered needs root)', (path) => {
  describe('item 1: entry names', () => {
    for (const [name, text] of [['../x', "climbs out with '..'"], ['/abs/path', 'absolute path'], ['./../x', "climbs out with '..'"], ['a/../../x', "climbs out with '..'"]] as const) {
      it(`refuses ${name}`, () => refused(path, () => [[{ name, data: 'pwned' }]], text));
    }
    it('refuses a NUL byte in a (pax) name', () => refused(path, () => [[{ name: 'x', pax: { path: 'a\0b' }, data: 'x' }]], 'NUL byte'));
  });

  describe('item 2: writing through symlinks', () => {
    for (const target of ['/', '../..']) {
      it(`refuses a file under a symlink to ${target} in the same layer`, () =>
        refused(path, () => [[{ name: 'evil', type: 'symlink', linkname: target }, { name: 'evil/x', data: 'pwned' }]], 'is a symlink'));
      it(`refuses a file under a symlink to ${target} from a lower layer`, () =>
        refused(path, () => [[{ name: 'evil', type: 'symlink', linkname: target }], [{ name: 'evil/x', data: 'pwned' }]], 'symlink'));
    }
    it('refuses writing through a symlink aimed at a host directory, in a later layer', () =>
      refused(path, (ctx) => [[{ name: 'evil', type: 'symlink', linkname: outside(ctx) }], [{ name: 'evil/victim', data: 'pwned' }]], 'symlink'));
    it('refuses a nested symlink parent from a lower layer (dir/link/x)', () =>
      refused(path, () => [[{ name: 'd/', type: 'directory' }, { name: 'd/l', type: 'symlink', linkname: '/' }], [{ name: 'd/l/x', data: 'pwned' }]], 'symlink'));
    for (const name of ['.', '/.', './']) {
      it(`refuses a symlink entry named ${JSON.stringify(name)} (CVE-2021-29136)`, () =>
        refused(path, () => [[{ name, type: 'symlink', linkname: '/' }]], name === '/.' ? 'absolute path' : 'image root'));
    }
  });

  describe('item 3: hardlinks', () => {
    it('refuses an absolute target', () => refused(path, (ctx) => [[{ name: 'h', type: 'link', linkname: `${ctx.root}/outside/victim` }]], 'absolute path'));
    it('refuses a target climbing out with ..', () => refused(path, () => [[{ name: 'h', type: 'link', linkname: '../outside/victim' }]], "climbs out with '..'"));
    it('refuses a target reached through a symlink', () =>
      refused(path, (ctx) => [[{ name: 'l', type: 'symlink', linkname: outside(ctx) }, { name: 'h', type: 'link', linkname: 'l/victim' }]], 'is a symlink'));
    it('refuses a target that is itself a symlink to a host file', () =>
      refused(path, (ctx) => [[{ name: 'l', type: 'symlink', linkname: `${outside(ctx)}/victim` }, { name: 'h', type: 'link', linkname: 'l' }]], 'not a regular file'));
  });

  describe('item 4: whiteouts', () => {
    it('refuses a whiteout climbing out', () => refused(path, () => [[{ name: 'a', data: 'x' }], [{ name: '../.wh.outside' }]], "climbs out with '..'"));
    it('refuses an absolute whiteout', () => refused(path, () => [[{ name: 'a', data: 'x' }], [{ name: '/.wh.a' }]], 'absolute path'));
    it('refuses a whiteout under a symlinked directory (same layer)', () =>
      refused(path, (ctx) => [[{ name: 'l', type: 'symlink', linkname: outside(ctx) }, { name: 'l/.wh.victim' }]], 'symlink'));
    it('refuses a whiteout under a symlinked directory (lower layer)', () =>
      refused(path, (ctx) => [[{ name: 'l', type: 'symlink', linkname: outside(ctx) }], [{ name: 'l/.wh.victim' }]], 'symlink'));
    it('refuses an opaque whiteout in a symlinked directory', () =>
      refused(path, (ctx) => [[{ name: 'l', type: 'symlink', linkname: outside(ctx) }], [{ name: 'l/.wh..wh..opq' }]], 'symlink'));
    it('a whiteout or opaque marker under a lower file, or under a path no layer has, removes and creates nothing', async () => {
      const ctx = await attackContext();
      roots.push(ctx.root);
      const lower = await rawTar([{ name: 'a', data: 'lower a' }, { name: 'a2', type: 'link', linkname: 'a' }, { name: 'b', data: 'lower b' }, { name: 'd/', type: 'directory', mode: 0o750 }, { name: 'd/f', data: 'lower f' }]);
      const upper = await rawTar([{ name: 'a/.wh.x' }, { name: 'b/.wh..wh..opq' }, { name: 'd/f/.wh.y' }, { name: 'c/.wh.x' }, { name: 'e/g/.wh..wh..opq' }]);
      const dest = await unpackVia(path, ctx.store, ctx.root, [{ tar: lower }, { tar: upper }]);
      expect(await readFile(join(dest, 'a'), 'utf8')).toBe('lower a');
      expect((await lstat(join(dest, 'a'))).ino).toBe((await lstat(join(dest, 'a2'))).ino);
      expect(await readFile(join(dest, 'b'), 'utf8')).toBe('lower b');
      expect(await readFile(join(dest, 'd/f'), 'utf8')).toBe('lower f');
      expect((await lstat(join(dest, 'd'))).mode & 0o7777).toBe(0o750);
      const mountPoints = ['dev', 'proc', 'sys', 'tmp']; // the flat unpacker adds these
      expect((await readdir(dest)).filter((n) => !mountPoints.includes(n)).sort()).toEqual(['a', 'a2', 'b', 'd']);
    });
    it('a whiteout under a directory the layer never declared keeps that directory\'s mode', async () => {
      const ctx = await attackContext();
      roots.push(ctx.root);
      const lower = await rawTar([{ name: 'root/', type: 'directory', mode: 0o700 }, { name: 'root/gone', data: 'x' }, { name: 'root/kept', data: 'y' }]);
      const dest = await unpackVia(path, ctx.store, ctx.root, [{ tar: lower }, { tar: await rawTar([{ name: 'root/.wh.gone' }, { name: 'root/new', data: 'z' }]) }]);
      expect((await lstat(join(dest, 'root'))).mode & 0o7777).toBe(0o700);
      expect((await readdir(join(dest, 'root'))).sort()).toEqual(['kept', 'new']);
    });
    for (const name of ['.wh.', '.wh..', 'a/.wh..']) {
      it(`refuses whiteout ${JSON.stringify(name)} that names no entry`, () => refused(path, () => [[{ name: 'a/', type: 'directory' }], [{ name }]], 'names no entry'));
    }
  });
});
