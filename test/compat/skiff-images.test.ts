// Images Skiff builds, checked by tools no one here wrote: oci-image-tool validates the
// layout, umoci unpacks them to the same tree Skiff does, and the node base image runs node
// (and holds nothing but node, its resolved shared libraries and the loader).
import { appendFileSync, lstatSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBusyboxBase, buildNodeBase, ImageStore, nodeRuntimeFiles, packFunction } from '../../services/image/src/index.js';
import { cleanTemps, have, isRoot, manifests, sh, skiffCliUnpack, skiffLibUnpack, tempDir, umociUnpack } from './tools.js';
import { walkTree } from './tree.js';

afterAll(cleanTemps);

const haveBusybox = (() => {
  try {
    return lstatSync('/bin/busybox').isFile();
  } catch {
    return false;
  }
})();

describe.skipIf(!isRoot || !haveBusybox)('images built by Skiff (skipped unless root with busybox-static)', () => {
  let layout = '';
  beforeAll(async () => {
    layout = join(tempDir(), 'store');
    const store = await ImageStore.open(layout);
    await buildBusyboxBase(store, { ref: 'busybox:latest' });
    await buildNodeBase(store, { ref: 'node:latest' });
    const fn = join(tempDir(), 'fn');
    mkdirSync(join(fn, 'lib'), { recursive: true });
    writeFileSync(join(fn, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
    writeFileSync(join(fn, 'lib', 'data.txt'), 'data\n');
    await packFunction(store, { dir: fn, base: 'busybox:latest', ref: 'fn:1', entrypoint: ['/function/run.sh'] });
  }, 120_000);

  describe.skipIf(!have('oci-image-tool'))('oci-image-tool validate (skipped without oci-image-tool)', () => {
    // oci-image-tool 1.0.0-rc1 has no "imageLayout" type; "image" on a directory autodetects
    // the layout and validates index.json, each manifest, config and the blobs' digests/sizes.
    it('accepts the whole layout (every ref)', () => {
      expect(sh('oci-image-tool', ['validate', '--type', 'image', layout])).toContain('Validation succeeded');
    });
    // rc1 reports "descriptor retrieved by refs [name=X] is not unique" for some entries of an
    // index.json whose names are all distinct (a bug in its ref filter; it happens with
    // digest= alone too); naming both name and digest selects the one descriptor.
    const refArgs = async (dir: string, ref: string): Promise<string[]> => {
      const { digest } = await (await ImageStore.open(dir)).resolve(ref);
      return ['--ref', `name=${ref}`, '--ref', `digest=${digest}`];
    };
    for (const ref of ['busybox:latest', 'node:latest', 'fn:1']) {
      it(`accepts ${ref}`, async () => {
        expect(sh('oci-image-tool', ['validate', '--type', 'image', ...(await refArgs(layout, ref)), layout])).toContain('Validation succeeded');
      });
    }
    it('is not a rubber stamp: a config blob one byte longer is refused', async () => {
      const bad = join(tempDir(), 'bad');
      sh('cp', ['-a', layout, bad]);
      const args = await refArgs(bad, 'busybox:latest');
      const index = JSON.parse(readFileSync(join(bad, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
      const entry = index.manifests.find((d) => d.annotations?.['org.opencontainers.image.ref.name'] === 'busybox:latest');
      const manifest = JSON.parse(readFileSync(join(bad, 'blobs/sha256', (entry?.digest ?? '').slice(7)), 'utf8')) as { config: { digest: string } };
      appendFileSync(join(bad, 'blobs/sha256', manifest.config.digest.slice(7)), ' ');
      expect(() => sh('oci-image-tool', ['validate', '--type', 'image', ...args, bad])).toThrow(/size mismatch/);
    });
  });

  describe.skipIf(!have('umoci'))('umoci unpack gives the same tree as Skiff (skipped without umoci)', () => {
    for (const ref of ['busybox:latest', 'node:latest', 'fn:1']) {
      it(ref, async () => {
        const root = tempDir();
        const reference = umociUnpack(layout, ref, join(root, 'bundle'));
        const cli = skiffCliUnpack(layout, ref, join(root, 'cli'), join(root, 'data'));
        const lib = await skiffLibUnpack(layout, ref, join(root, 'lib'));
        for (const [what, tree] of [['skiff image unpack', cli], ['unpackImage', lib]] as const) {
          const m = manifests(reference, tree);
          expect(m.skiff, `${what} vs umoci unpack`).toEqual(m.ref);
        }
      }, 120_000);
    }
  });

  describe('the node base image', () => {
    let rootfs = '';
    beforeAll(async () => {
      rootfs = await skiffLibUnpack(layout, 'node:latest', join(tempDir(), 'rootfs'));
    }, 120_000);

    it('holds only node, its resolved shared libraries, the loader and /etc/passwd, /etc/group', async () => {
      const libs = await nodeRuntimeFiles(process.execPath);
      const expected = new Set(['/usr/local/bin/node', '/etc/passwd', '/etc/group', ...libs]);
      const files = walkTree(rootfs).filter((e) => e.type !== 'dir');
      expect(files.filter((e) => e.type !== 'file').map((e) => `${e.path} ${e.type}`)).toEqual([]);
      expect(files.map((e) => e.path).sort()).toEqual([...expected].sort());
      expect(libs.some((l) => /ld-linux|ld-musl|ld\.so/.test(l))).toBe(true);
    });

    it.skipIf(!have('unshare') || !have('chroot'))("runs node -e 'console.log(1+1)' chrooted into it (skipped without unshare and chroot)", () => {
      // A private mount namespace, then chroot: nothing from the host's / is reachable.
      const out = sh('unshare', ['-m', '--', 'chroot', rootfs, '/usr/local/bin/node', '-e', 'console.log(1+1)']);
      expect(out.trim()).toBe('2');
    });

    it('has no symlink pointing outside what it holds', () => {
      for (const e of walkTree(rootfs)) if (e.type === 'symlink') throw new Error(`${e.path} -> ${readlinkSync(join(rootfs, e.path))}`);
    });
  });
});
