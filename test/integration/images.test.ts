import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore, buildBusyboxBase, packFunction } from '@skiff/image';
import { Platform, REPO, have } from '@skiff/testkit';

const ECHO_DIR = join(REPO, 'functions/echo');
const ECHO_ENTRY = ['/bin/sh', '/function/handler.sh'];

interface Image {
  ref: string;
  digest: string;
  mediaType: string;
  size: number;
}

function tarOf(dir: string): Buffer {
  return execFileSync('tar', ['-C', dir, '-cf', '-', '.'], { maxBuffer: 1 << 30 });
}

function tempFiles(store: ImageStore): string[] {
  return readdirSync(join(store.dir, 'blobs', 'sha256')).filter((n) => n.startsWith('.upload-'));
}

describe('image store over /v1/images', () => {
  let p: Platform;
  let work: string;

  const post = (body: Uint8Array, query = '') => p.api('POST', `/v1/images${query}`, body, { 'content-type': 'application/x-tar' });
  const refs = async () => ((await (await p.api('GET', '/v1/images')).json()) as { images: Image[] }).images.map((i) => i.ref);

  /** A fresh OCI layout with busybox and a function image under `ref`, whose layer is unique. */
  async function layoutWith(ref: string): Promise<{ dir: string; digest: string; layer: string }> {
    const dir = mkdtempSync(join(work, 'layout-'));
    const fnDir = mkdtempSync(join(work, 'fn-'));
    cpSync(ECHO_DIR, fnDir, { recursive: true });
    writeFileSync(join(fnDir, 'nonce'), randomBytes(16).toString('hex'));
    const store = await ImageStore.open(dir);
    await buildBusyboxBase(store, { ref: 'busybox:latest' });
    const desc = await packFunction(store, { dir: fnDir, base: 'busybox:latest', ref, entrypoint: ECHO_ENTRY });
    const image = await store.resolve(ref);
    return { dir, digest: desc.digest, layer: image.manifest.layers.at(-1)!.digest };
  }

  beforeAll(async () => {
    p = await Platform.create();
    await p.startAll();
    work = mkdtempSync(join(tmpdir(), 'skiff-images-'));
  });
  afterAll(async () => {
    await p?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('imports an oci-archive made with tar, lists it, and runs a function from it', async () => {
    const { dir, digest } = await layoutWith('imported/echo:v1');
    const res = await post(tarOf(dir));
    expect(res.status).toBe(201);
    const { images } = (await res.json()) as { images: Image[] };
    expect(images.map((i) => i.ref).sort()).toEqual(['busybox:latest', 'imported/echo:v1']);
    expect(images.find((i) => i.ref === 'imported/echo:v1')).toMatchObject({ digest, mediaType: 'application/vnd.oci.image.manifest.v1+json' });

    const listed = ((await (await p.api('GET', '/v1/images')).json()) as { images: Image[] }).images;
    const echo = listed.find((i) => i.ref === 'imported/echo:v1')!;
    expect(echo.digest).toBe(digest);
    // Manifest, config, busybox layer and function layer: the busybox binary alone is far more than 100 kB.
    expect(echo.size).toBeGreaterThan(100_000);
    expect(echo.size).toBeGreaterThan(listed.find((i) => i.ref === 'busybox:latest')!.size);

    const fn = await p.api('PUT', '/v1/functions/imported', { image: 'imported/echo:v1' });
    expect(fn.status).toBe(201);
    const out = await p.api('POST', '/v1/functions/imported/invoke', 'from an archive');
    expect(await out.text()).toBe('from an archive');
    expect(tempFiles(p.store)).toEqual([]);
  });

  it.runIf(have('skopeo'))('imports an archive written by skopeo, naming bare tags with ?repository= (needs skopeo)', async () => {
    const { dir, digest } = await layoutWith('src:latest');
    const archive = join(work, 'skopeo.tar');
    execFileSync('skopeo', ['copy', `oci:${dir}:src:latest`, `oci-archive:${archive}:v7`], { stdio: 'pipe' });
    const bytes = readFileSync(archive);

    const bare = await post(bytes);
    expect(bare.status).toBe(400);
    const problem = await bare.json();
    expect(problem.code).toBe('SKIFF_VALIDATION_FAILED');
    expect(problem.detail).toContain('repository');

    const named = await post(bytes, '?repository=team/from-skopeo');
    expect(named.status).toBe(201);
    expect((await named.json()).images).toEqual([expect.objectContaining({ ref: 'team/from-skopeo:v7', digest })]);
    expect((await p.store.resolve('team/from-skopeo:v7')).digest).toBe(digest);

    const badName = await post(bytes, '?repository=Not_Valid');
    expect(badName.status).toBe(400);
    expect((await badName.json()).errors[0].field).toBe('query.repository');
  });

  it('rejects an archive whose blob does not match its digest, and tags nothing', async () => {
    const { dir, layer } = await layoutWith('corrupt/echo:v1');
    const path = join(dir, 'blobs/sha256', layer.slice(7));
    const bytes = readFileSync(path);
    bytes[bytes.length - 5]! ^= 0xff;
    writeFileSync(path, bytes);
    const before = await refs();

    const res = await post(tarOf(dir));
    expect(res.status).toBe(400);
    const problem = await res.json();
    expect(problem.code).toBe('SKIFF_VALIDATION_FAILED');
    expect(problem.detail).toContain(`blobs/sha256/${layer.slice(7)} hashes to sha256:`);
    expect(await refs()).toEqual(before);
    expect(() => readFileSync(p.store.blobPath(layer))).toThrow();
    expect(tempFiles(p.store)).toEqual([]);
  });

  it('rejects an archive missing a layer, a truncated one and one that is not a layout', async () => {
    const before = await refs();
    const { dir, layer } = await layoutWith('incomplete/echo:v1');
    rmSync(join(dir, 'blobs/sha256', layer.slice(7)));
    const missing = await post(tarOf(dir));
    expect(missing.status).toBe(400);
    expect((await missing.json()).detail).toContain(`${layer}, which is neither in the archive nor in the store`);

    const whole = await layoutWith('truncated/echo:v1');
    const tar = tarOf(whole.dir);
    const truncated = await post(tar.subarray(0, Math.floor(tar.length / 2)));
    expect(truncated.status).toBe(400);
    expect((await truncated.json()).detail).toMatch(/not a readable tar|no index\.json|no oci-layout/);

    const notLayout = mkdtempSync(join(work, 'plain-'));
    mkdirSync(join(notLayout, 'etc'));
    writeFileSync(join(notLayout, 'etc/hello'), 'hi');
    const plain = await post(tarOf(notLayout));
    expect(plain.status).toBe(400);
    expect((await plain.json()).detail).toContain('no oci-layout');

    const garbage = await post(randomBytes(4096));
    expect(garbage.status).toBe(400);
    expect((await garbage.json()).code).toBe('SKIFF_VALIDATION_FAILED');

    expect(await refs()).toEqual(before);
    expect(() => readFileSync(p.store.blobPath(whole.layer))).toThrow();
    expect(tempFiles(p.store)).toEqual([]);
  });

  it('needs a token for both routes', async () => {
    for (const [method, body] of [['GET', undefined], ['POST', new Uint8Array(10)]] as const) {
      const res = await fetch(`${p.gatewayUrl}/v1/images`, { method, ...(body ? { body } : {}) });
      expect(res.status).toBe(401);
      expect((await res.json()).code).toBe('SKIFF_UNAUTHORIZED');
    }
  });
});
