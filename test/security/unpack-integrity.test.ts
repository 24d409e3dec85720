// docs/security.md #8 through both public unpack paths, plus entries hidden after the tar
// end-of-archive marker (tar-stream would read on; the framing check stops it).
import { readFile, rm, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../services/image/src/digest.js';
import { attackContext, rawTar, storeImage, unpackVia, type TestLayer, type UnpackPath } from '../../services/image/src/testkit.js';

const roots: string[] = [];
afterAll(async () => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));
const privileged = process.getuid?.() === 0;

async function refused(path: UnpackPath, layers: TestLayer[], text: string, code = 'SKIFF_IMAGE_INVALID') {
  const c = await attackContext();
  roots.push(c.root);
  await expect(unpackVia(path, c.store, c.root, layers)).rejects.toMatchObject({ name: 'SkiffError', code, message: expect.stringContaining(text) });
  expect(await c.leftovers()).toEqual([]);
}

const good = () => rawTar([{ name: 'a', data: 'aaa' }]);

describe.each<UnpackPath>(privileged ? ['flat', 'layered'] : ['flat'])('%s unpack (layered needs root)', (path) => {
  it('refuses a blob whose bytes changed in the store', async () => {
    const c = await attackContext();
    roots.push(c.root);
    const tar = await good();
    const desc = await storeImage(c.store, [{ tar }], 'probe:1');
    const manifest = JSON.parse((await c.store.readBlob(desc.digest)).toString()) as { layers: Array<{ digest: string }> };
    const blob = c.store.blobPath(manifest.layers[0]!.digest);
    const bytes = await readFile(blob);
    bytes[bytes.length - 9] = (bytes[bytes.length - 9]! + 1) % 256;
    await writeFile(blob, bytes);
    await expect(unpackVia(path, c.store, c.root, [{ tar }])).rejects.toMatchObject({ code: 'SKIFF_IMAGE_INVALID', message: expect.stringContaining('layer 0') });
    expect(await c.leftovers()).toEqual([]);
  });
  it('refuses a descriptor size smaller than the blob', async () => refused(path, [{ tar: await good(), descriptor: { size: 10 } }], 'more than the declared 10 bytes'));
  it('refuses a descriptor size larger than the blob', async () => refused(path, [{ tar: await good(), descriptor: { size: 100_000 } }], 'expected 100000'));
  it('refuses a diffID that does not match', async () => refused(path, [{ tar: await good(), diffId: sha256('other') }], 'diffID'));
  it('refuses truncated gzip', async () => {
    const tar = await good();
    const gz = gzipSync(tar);
    await refused(path, [{ tar, blob: gz.subarray(0, gz.length - 12) }], 'layer 0');
  });
  it('refuses garbage after the gzip stream', async () => {
    const tar = await good();
    await refused(path, [{ tar, blob: Buffer.concat([gzipSync(tar), Buffer.from('trailing garbage')]) }], 'layer 0');
  });
  it('refuses garbage after the tar end-of-archive marker, even with a matching diffID', async () => {
    const tar = Buffer.concat([await good(), Buffer.from('garbage'.padEnd(512, '!'))]);
    await refused(path, [{ tar }], 'after the tar end-of-archive marker');
  });
  it('does not apply entries hidden after the end-of-archive marker (refuses the layer)', async () => {
    const hidden = await rawTar([{ name: 'hidden', data: 'should never appear' }]);
    const tar = Buffer.concat([await good(), hidden]);
    await refused(path, [{ tar }], 'after the tar end-of-archive marker');
  });
  it('treats one zero block as the end: an entry after a lone zero block is refused', async () => {
    const a = await good();
    const entriesOnly = a.subarray(0, 1024); // header + one data block of "a", no end marker
    const tar = Buffer.concat([entriesOnly, Buffer.alloc(512), await rawTar([{ name: 'hidden', data: 'x' }])]);
    await refused(path, [{ tar }], 'after the tar end-of-archive marker');
  });
  it('refuses a tar cut mid-entry', async () => {
    const tar = (await rawTar([{ name: 'big', data: Buffer.alloc(4096, 1) }])).subarray(0, 2048);
    await refused(path, [{ tar }], 'layer 0');
  });
  it('refuses a data size on a directory entry (readers disagree on skipping it)', async () => {
    const tar = await rawTar([{ name: 'd/', type: 'directory' }, { name: 'f', data: 'x' }]);
    tar.write('00000001000\0', 124, 'latin1');
    tar.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of tar.subarray(0, 512)) sum += b;
    tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    await refused(path, [{ tar }], 'declares 512 data bytes');
  });
  it('refuses a layer media type it cannot read (zstd)', async () =>
    refused(path, [{ tar: await good(), descriptor: { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' } }], 'unsupported media type'));
});
