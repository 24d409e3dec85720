import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sha256 } from './digest.js';
import { MEDIA } from './media.js';
import { hostArchitecture } from './platform.js';
import { ImageStore } from './store.js';
import { rawTar, storeImage } from './testkit.js';

const temps: string[] = [];
async function openStore(): Promise<ImageStore> {
  const d = await mkdtemp(join(tmpdir(), 'skiff-store-'));
  temps.push(d);
  return ImageStore.open(join(d, 'layout'));
}
afterEach(async () => {
  await Promise.all(temps.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function streamText(s: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

describe('ImageStore layout', () => {
  it('creates an empty OCI layout and reopens it', async () => {
    const store = await openStore();
    expect(JSON.parse(await readFile(join(store.dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    expect(JSON.parse(await readFile(join(store.dir, 'index.json'), 'utf8'))).toMatchObject({ schemaVersion: 2, manifests: [] });
    expect((await stat(join(store.dir, 'blobs/sha256'))).isDirectory()).toBe(true);
    const again = await ImageStore.open(store.dir);
    expect(await again.list()).toEqual([]);
  });

  it('refuses a layout of another version', async () => {
    const store = await openStore();
    await writeFile(join(store.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '2.0.0' }));
    await expect(ImageStore.open(store.dir)).rejects.toMatchObject({ code: 'SKIFF_IMAGE_INVALID' });
  });
});

describe('blobs', () => {
  it('puts idempotently and reads back verified', async () => {
    const store = await openStore();
    const a = await store.putBlob(Buffer.from('hello'), 'text/plain');
    const b = await store.putBlob(Buffer.from('hello'), 'text/plain');
    expect(a).toEqual({ mediaType: 'text/plain', digest: sha256('hello'), size: 5 });
    expect(b).toEqual(a);
    expect((await store.readBlob(a.digest, 5)).toString()).toBe('hello');
    // No temp files left next to the blob.
    expect(await readdir(join(store.dir, 'blobs/sha256'))).toEqual([a.digest.slice(7)]);
  });

  it('detects changed content and wrong sizes, naming the digest', async () => {
    const store = await openStore();
    const d = await store.putBlob(Buffer.from('hello'), 'text/plain');
    await expect(store.readBlob(d.digest, 6)).rejects.toMatchObject({ code: 'SKIFF_IMAGE_INVALID', message: expect.stringContaining(d.digest) });
    await writeFile(store.blobPath(d.digest), 'jello');
    await expect(store.readBlob(d.digest)).rejects.toMatchObject({ code: 'SKIFF_IMAGE_INVALID', message: expect.stringContaining(d.digest) });
    await expect(streamText(store.blobStream(d))).rejects.toMatchObject({ code: 'SKIFF_IMAGE_INVALID', message: expect.stringContaining(d.digest) });
  });

  it('streams a good blob and fails a short one', async () => {
    const store = await openStore();
    const d = await store.putBlob(Buffer.from('streamed'), 'text/plain');
    expect(await streamText(store.blobStream(d))).toBe('streamed');
    await expect(streamText(store.blobStream({ digest: d.digest, size: 100 }))).rejects.toMatchObject({ code: 'SKIFF_IMAGE_INVALID' });
  });

  it('validates digests before touching the filesystem', async () => {
    const store = await openStore();
    for (const bad of ['sha256:../../../etc/passwd', `md5:${'a'.repeat(32)}`, `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`]) {
      await expect(store.readBlob(bad)).rejects.toMatchObject({ code: 'SKIFF_IMAGE_INVALID', message: expect.stringContaining(JSON.stringify(bad)) });
      expect(() => store.blobStream({ digest: bad, size: 1 })).toThrow(/sha256:<64 hex>/);
    }
  });

  it('reports a missing blob as not found', async () => {
    const store = await openStore();
    const missing = sha256('nope');
    await expect(store.readBlob(missing)).rejects.toMatchObject({ code: 'SKIFF_IMAGE_NOT_FOUND', message: expect.stringContaining(missing) });
    await expect(streamText(store.blobStream({ digest: missing, size: 4 }))).rejects.toMatchObject({ code: 'SKIFF_IMAGE_NOT_FOUND' });
  });
});

describe('refs', () => {
  it('tags, lists, resolves name as name:latest and replaces on re-tag', async () => {
    const store = await openStore();
    const one = await storeImage(store, [{ tar: await rawTar([{ name: 'a', data: '1' }]) }], 'echo');
    const two = await storeImage(store, [{ tar: await rawTar([{ name: 'a', data: '2' }]) }], 'echo:v2');
    expect(await store.list()).toEqual([
      { ref: 'echo:latest', digest: one.digest, size: one.size },
      { ref: 'echo:v2', digest: two.digest, size: two.size },
    ]);
    const r = await store.resolve('echo');
    expect(r).toMatchObject({ ref: 'echo:latest', digest: one.digest, size: one.size });
    expect(r.manifest.layers).toHaveLength(1);
    expect(r.config.rootfs.diff_ids).toHaveLength(1);
    await store.tag('echo:latest', two);
    expect((await store.resolve('echo:latest')).digest).toBe(two.digest);
    expect(await store.list()).toHaveLength(2);
  });

  it('throws SKIFF_IMAGE_NOT_FOUND naming the ref', async () => {
    const store = await openStore();
    await expect(store.resolve('ghost')).rejects.toMatchObject({ code: 'SKIFF_IMAGE_NOT_FOUND', message: expect.stringContaining('ghost:latest') });
  });

  it('refuses to tag a malformed ref', async () => {
    const store = await openStore();
    const d = await storeImage(store, [{ tar: await rawTar([]) }]);
    await expect(store.tag('Bad Ref', d)).rejects.toMatchObject({ code: 'SKIFF_VALIDATION_FAILED' });
    await expect(store.tag('../x', d)).rejects.toMatchObject({ code: 'SKIFF_VALIDATION_FAILED' });
  });

  it('keeps every tag when many are written at once', async () => {
    const store = await openStore();
    const d = await storeImage(store, [{ tar: await rawTar([]) }], 'base');
    await Promise.all(Array.from({ length: 8 }, (_, i) => store.tag(`fn${i}`, d)));
    expect((await store.list()).map((e) => e.ref).sort()).toEqual(['base:latest', ...Array.from({ length: 8 }, (_, i) => `fn${i}:latest`)].sort());
  });

  it('picks the host platform from an image index', async () => {
    const store = await openStore();
    const host = await storeImage(store, [{ tar: await rawTar([{ name: 'host', data: 'h' }]) }], 'tmp-host');
    const other = await storeImage(store, [{ tar: await rawTar([{ name: 'other', data: 'o' }]) }], 'tmp-other');
    const foreign = hostArchitecture() === 's390x' ? 'riscv64' : 's390x';
    const index = {
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: [
        { ...other, platform: { architecture: foreign, os: 'linux' } },
        { ...host, platform: { architecture: hostArchitecture(), os: 'linux' } },
      ],
    };
    const idx = await store.putBlob(Buffer.from(JSON.stringify(index)), MEDIA.ociIndex);
    await store.tag('multi:1', idx);
    expect((await store.resolve('multi:1')).digest).toBe(host.digest);

    const onlyForeign = await store.putBlob(Buffer.from(JSON.stringify({ ...index, manifests: [index.manifests[0]] })), MEDIA.ociIndex);
    await store.tag('multi:2', onlyForeign);
    await expect(store.resolve('multi:2')).rejects.toMatchObject({ code: 'SKIFF_IMAGE_NOT_FOUND', message: expect.stringContaining('multi:2') });
  });
});

describe('image()', () => {
  it('loads by manifest digest with its ref', async () => {
    const store = await openStore();
    const d = await storeImage(store, [{ tar: await rawTar([{ name: 'x', data: 'x' }]) }], 'named:1');
    const img = await store.image(d.digest);
    expect(img).toMatchObject({ ref: 'named:1', digest: d.digest, size: d.size });
  });

  it('refuses a manifest whose config is corrupt', async () => {
    const store = await openStore();
    const d = await storeImage(store, [{ tar: await rawTar([]) }]);
    const img = await store.image(d.digest);
    await writeFile(store.blobPath(img.manifest.config.digest), '{"tampered":true}');
    await expect(store.image(d.digest)).rejects.toMatchObject({ code: 'SKIFF_IMAGE_INVALID', message: expect.stringContaining(img.manifest.config.digest) });
  });

  it('refuses a config whose diff_ids do not match the layers', async () => {
    const store = await openStore();
    const config = await store.putBlob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })), MEDIA.ociConfig);
    const layer = await store.putBlob(await rawTar([]), MEDIA.ociLayerTar);
    const manifest = await store.putBlob(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociManifest, config, layers: [layer] })), MEDIA.ociManifest);
    await expect(store.image(manifest.digest)).rejects.toMatchObject({ code: 'SKIFF_IMAGE_INVALID', message: expect.stringContaining('0 diff_ids for 1 layers') });
  });
});
