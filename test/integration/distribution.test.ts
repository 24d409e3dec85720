import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore, MEDIA, buildBusyboxBase, packFunction } from '@skiff/image';
import { Platform, REPO, freePort, have, waitUntil } from '@skiff/testkit';

const ECHO_DIR = join(REPO, 'functions/echo');
const ECHO_ENTRY = ['/bin/sh', '/function/handler.sh'];

const sha256 = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function tempFiles(store: ImageStore): string[] {
  return readdirSync(join(store.dir, 'blobs', 'sha256')).filter((n) => n.startsWith('.upload-'));
}

function manifestDigestOf(layoutDir: string): string {
  const index = JSON.parse(readFileSync(join(layoutDir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  expect(index.manifests).toHaveLength(1);
  return index.manifests[0]!.digest;
}

describe.runIf(have('skopeo'))('OCI Distribution API (/v2) with skopeo (skipped without skopeo)', () => {
  let p: Platform;
  let layout: string;
  let work: string;
  let echoDigest: string;
  let host: string;
  let creds: string;

  /** A /v2 request with the admin token, as Basic auth the way registry clients send it. */
  const v2 = (method: string, path: string, body?: Uint8Array | string, headers: Record<string, string> = {}) =>
    fetch(`${p.gatewayUrl}${path}`, {
      method,
      headers: { authorization: `Basic ${Buffer.from(`admin:${p.token}`).toString('base64')}`, ...headers },
      ...(body === undefined ? {} : { body: body as NonNullable<RequestInit['body']> }),
    });

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.startAll();
    host = `127.0.0.1:${p.port}`;
    creds = `admin:${p.token}`;
    work = mkdtempSync(join(tmpdir(), 'skiff-dist-'));
    // A separate OCI layout holding the image to push, built the same way functions are.
    layout = join(work, 'layout');
    const src = await ImageStore.open(layout);
    await buildBusyboxBase(src, { ref: 'busybox:latest' });
    echoDigest = (await packFunction(src, { dir: ECHO_DIR, base: 'busybox:latest', ref: 'echo:latest', entrypoint: ECHO_ENTRY })).digest;
  });
  afterAll(async () => {
    await p?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('answers GET /v2/ with the API version, and 401 with a Basic challenge without credentials', async () => {
    const ok = await v2('GET', '/v2/');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    const bearer = await fetch(`${p.gatewayUrl}/v2/`, { headers: { authorization: `Bearer ${p.token}` } });
    expect(bearer.status).toBe(200);
    const anon = await fetch(`${p.gatewayUrl}/v2/`);
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toBe('Basic realm="skiff"');
    expect((await anon.json()).errors[0].code).toBe('UNAUTHORIZED');
  });

  it('takes a push from skopeo, deploys a function from the pushed ref and invokes it', async () => {
    const started = Date.now();
    execFileSync('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:echo:latest`, `docker://${host}/team/echo:v1`], { stdio: 'pipe' });
    const pushMs = Date.now() - started;
    console.log(`skopeo push of the echo image (busybox + 1 layer): ${pushMs} ms`);

    const list = (await (await p.api('GET', '/v1/images')).json()) as { images: { ref: string; digest: string; size: number }[] };
    const pushed = list.images.find((i) => i.ref === 'team/echo:v1');
    expect(pushed?.digest).toBe(echoDigest);
    expect(pushed?.size).toBeGreaterThan(100_000);

    const deployed = await p.api('PUT', '/v1/functions/pushed-echo', { image: 'team/echo:v1' });
    expect(deployed.status).toBe(201);
    expect((await deployed.json()).imageDigest).toBe(echoDigest);
    const out = await p.api('POST', '/v1/functions/pushed-echo/invoke', 'through the registry');
    expect(out.status).toBe(200);
    expect(await out.text()).toBe('through the registry');

    // A second push of the same image finds every blob there already and changes nothing.
    execFileSync('skopeo', ['copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:echo:latest`, `docker://${host}/team/echo:v1`], { stdio: 'pipe' });
    expect(tempFiles(p.store)).toEqual([]);
  });

  it('serves the pushed image back to skopeo byte for byte', async () => {
    const out = join(work, 'pulled');
    const started = Date.now();
    execFileSync('skopeo', ['copy', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/team/echo:v1`, `oci:${out}:echo`], { stdio: 'pipe' });
    console.log(`skopeo pull of the echo image: ${Date.now() - started} ms`);
    expect(manifestDigestOf(out)).toBe(echoDigest);
    const manifest = JSON.parse(readFileSync(join(out, 'blobs/sha256', echoDigest.slice(7)), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
    for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
      expect(sha256(readFileSync(join(out, 'blobs/sha256', d.slice(7))))).toBe(d);
    }
    // And skopeo can read the store's own base image, which was never pushed.
    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', '--creds', creds, `docker://${host}/busybox:latest`], { encoding: 'utf8' }));
    expect(inspect.Digest).toBe((await p.store.resolve('busybox:latest')).digest);
  });

  it('serves manifests by tag and by digest, tags/list and the catalog', async () => {
    const byTag = await v2('GET', '/v2/team/echo/manifests/v1', undefined, { accept: MEDIA.ociManifest });
    expect(byTag.status).toBe(200);
    expect(byTag.headers.get('content-type')).toBe(MEDIA.ociManifest);
    expect(byTag.headers.get('docker-content-digest')).toBe(echoDigest);
    const bytes = Buffer.from(await byTag.arrayBuffer());
    expect(sha256(bytes)).toBe(echoDigest);

    const head = await v2('HEAD', `/v2/team/echo/manifests/${echoDigest}`);
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(bytes.length));
    expect((await v2('GET', '/v2/team/echo/manifests/nope')).status).toBe(404);
    const unknown = await v2('GET', '/v2/team/echo/manifests/nope');
    expect((await unknown.json()).errors[0].code).toBe('MANIFEST_UNKNOWN');

    expect(await (await v2('GET', '/v2/team/echo/tags/list')).json()).toEqual({ name: 'team/echo', tags: ['v1'] });
    const none = await v2('GET', '/v2/nobody/here/tags/list');
    expect(none.status).toBe(404);
    expect((await none.json()).errors[0].code).toBe('NAME_UNKNOWN');
    expect((await (await v2('GET', '/v2/_catalog')).json()).repositories).toEqual(expect.arrayContaining(['busybox', 'team/echo']));
  });

  it('uploads in chunks with ranges, and HEAD/GET the finished blob', async () => {
    const data = randomBytes(300_000);
    const digest = sha256(data);
    const start = await v2('POST', '/v2/chunks/blobs/uploads/');
    expect(start.status).toBe(202);
    const uuid = start.headers.get('docker-upload-uuid');
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    let loc = start.headers.get('location')!;
    expect(loc).toBe(`/v2/chunks/blobs/uploads/${uuid}`);

    const first = await v2('PATCH', loc, data.subarray(0, 100_000), { 'content-range': '0-99999', 'content-type': 'application/octet-stream' });
    expect(first.status).toBe(202);
    expect(first.headers.get('range')).toBe('0-99999');
    loc = first.headers.get('location')!;
    // A chunk that does not continue where the upload is gets 416 and the current range.
    const gap = await v2('PATCH', loc, data.subarray(150_000, 200_000), { 'content-range': '150000-199999' });
    expect(gap.status).toBe(416);
    expect(gap.headers.get('range')).toBe('0-99999');
    const second = await v2('PATCH', loc, data.subarray(100_000, 200_000), { 'content-range': '100000-199999' });
    expect(second.headers.get('range')).toBe('0-199999');
    const status = await v2('GET', loc);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-199999');

    // The final chunk travels with the PUT that closes the upload.
    const done = await v2('PUT', `${loc}?digest=${digest}`, data.subarray(200_000));
    expect(done.status).toBe(201);
    expect(done.headers.get('docker-content-digest')).toBe(digest);
    expect(done.headers.get('location')).toBe(`/v2/chunks/blobs/${digest}`);
    expect((await v2('GET', loc)).status).toBe(404);

    const head = await v2('HEAD', `/v2/chunks/blobs/${digest}`);
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(data.length));
    const got = Buffer.from(await (await v2('GET', `/v2/other/name/blobs/${digest}`)).arrayBuffer());
    expect(got.equals(data)).toBe(true);
    expect(tempFiles(p.store)).toEqual([]);
  });

  it('takes a monolithic upload, and mounts a blob the store already has', async () => {
    const data = randomBytes(5000);
    const digest = sha256(data);
    const put = await v2('POST', `/v2/mono/blobs/uploads/?digest=${digest}`, data, { 'content-type': 'application/octet-stream' });
    expect(put.status).toBe(201);
    expect(readFileSync(p.store.blobPath(digest)).equals(data)).toBe(true);

    const mount = await v2('POST', `/v2/elsewhere/blobs/uploads/?mount=${digest}&from=mono`);
    expect(mount.status).toBe(201);
    expect(mount.headers.get('location')).toBe(`/v2/elsewhere/blobs/${digest}`);
    const missing = await v2('POST', `/v2/elsewhere/blobs/uploads/?mount=${sha256('not here')}&from=mono`);
    expect(missing.status).toBe(202);
    await v2('DELETE', missing.headers.get('location')!);
  });

  it('refuses a wrong digest at the end of an upload with DIGEST_INVALID and writes nothing', async () => {
    const data = randomBytes(50_000);
    const wrong = sha256('something else');
    const start = await v2('POST', '/v2/bad/blobs/uploads/');
    const loc = start.headers.get('location')!;
    expect((await v2('PATCH', loc, data)).status).toBe(202);
    const res = await v2('PUT', `${loc}?digest=${wrong}`);
    expect(res.status).toBe(400);
    expect((await res.json()).errors[0].code).toBe('DIGEST_INVALID');
    expect(existsSync(p.store.blobPath(wrong))).toBe(false);
    expect(existsSync(p.store.blobPath(sha256(data)))).toBe(false);
    expect(tempFiles(p.store)).toEqual([]);
    expect((await v2('GET', loc)).status).toBe(404);

    const mono = await v2('POST', `/v2/bad/blobs/uploads/?digest=${wrong}`, data);
    expect(mono.status).toBe(400);
    expect((await mono.json()).errors[0].code).toBe('DIGEST_INVALID');
    expect(existsSync(p.store.blobPath(sha256(data)))).toBe(false);
    expect(tempFiles(p.store)).toEqual([]);
  });

  it('refuses a manifest naming a blob that was never pushed with MANIFEST_BLOB_UNKNOWN and tags nothing', async () => {
    const base = await p.store.resolve('busybox:latest');
    const ghost = sha256('a layer nobody pushed');
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: base.manifest.config,
      layers: [...base.manifest.layers, { mediaType: MEDIA.ociLayerGzip, digest: ghost, size: 123 }],
    });
    const res = await v2('PUT', '/v2/broken/manifests/latest', manifest, { 'content-type': MEDIA.ociManifest });
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.errors[0].code).toBe('MANIFEST_BLOB_UNKNOWN');
    expect(body.errors[0].message).toContain(ghost);
    expect((await p.store.list()).map((e) => e.ref)).not.toContain('broken:latest');
    expect(existsSync(p.store.blobPath(sha256(manifest)))).toBe(false);

    const bad = await v2('PUT', '/v2/broken/manifests/latest', '{"schemaVersion": 2, "mediaType": "text/plain"}', { 'content-type': 'text/plain' });
    expect(bad.status).toBe(400);
    expect((await bad.json()).errors[0].code).toBe('MANIFEST_INVALID');
    const byWrongDigest = await v2('PUT', `/v2/broken/manifests/${sha256('x')}`, JSON.stringify({ ...base.manifest }), { 'content-type': MEDIA.ociManifest });
    expect(byWrongDigest.status).toBe(400);
    expect((await byWrongDigest.json()).errors[0].code).toBe('DIGEST_INVALID');
  });

  it('accepts a Docker schema 2 manifest and an OCI index, and deploys through the index', async () => {
    const echo = await p.store.resolve('team/echo:v1');
    const docker = JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.dockerManifest,
      config: { ...echo.manifest.config, mediaType: MEDIA.dockerConfig },
      layers: echo.manifest.layers.map((l) => ({ ...l, mediaType: MEDIA.dockerLayerGzip })),
    });
    const put = await v2('PUT', '/v2/team/docker-echo/manifests/v1', docker, { 'content-type': MEDIA.dockerManifest });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(sha256(docker));
    const got = await v2('GET', '/v2/team/docker-echo/manifests/v1');
    expect(got.headers.get('content-type')).toBe(MEDIA.dockerManifest);
    expect(await got.text()).toBe(docker);
    const dockerFn = await p.api('PUT', '/v1/functions/docker-echo', { image: 'team/docker-echo:v1' });
    expect(dockerFn.status).toBe(201);
    expect((await (await p.api('POST', '/v1/functions/docker-echo/invoke', 'schema2')).text())).toBe('schema2');

    const arch = (echo.config.architecture);
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.ociIndex,
      manifests: [{ mediaType: MEDIA.ociManifest, digest: echo.digest, size: echo.size, platform: { os: 'linux', architecture: arch } }],
    });
    const putIndex = await v2('PUT', '/v2/team/multi/manifests/latest', index, { 'content-type': MEDIA.ociIndex });
    expect(putIndex.status).toBe(201);
    const fn = await p.api('PUT', '/v1/functions/multi-echo', { image: 'team/multi:latest' });
    expect(fn.status).toBe(201);
    expect((await fn.json()).imageDigest).toBe(echo.digest);

    const dangling = JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.ociIndex, manifests: [{ mediaType: MEDIA.ociManifest, digest: sha256('no manifest'), size: 10 }] });
    const refused = await v2('PUT', '/v2/team/multi/manifests/broken', dangling, { 'content-type': MEDIA.ociIndex });
    expect(refused.status).toBe(400);
    expect((await refused.json()).errors[0].code).toBe('MANIFEST_BLOB_UNKNOWN');
  });

  it('refuses every /v2 route without valid credentials, with 401 and nothing changed', async () => {
    const blob = (await p.store.resolve('busybox:latest')).manifest.layers[0]!.digest;
    const routes: [string, string][] = [
      ['GET', '/v2/'],
      ['GET', '/v2/_catalog'],
      ['GET', '/v2/team/echo/tags/list'],
      ['GET', '/v2/team/echo/manifests/v1'],
      ['HEAD', '/v2/team/echo/manifests/v1'],
      ['PUT', '/v2/team/echo/manifests/stolen'],
      ['GET', `/v2/team/echo/blobs/${blob}`],
      ['HEAD', `/v2/team/echo/blobs/${blob}`],
      ['POST', '/v2/team/echo/blobs/uploads/'],
      ['POST', `/v2/team/echo/blobs/uploads/?digest=${sha256('x')}`],
      ['PATCH', '/v2/team/echo/blobs/uploads/00000000-0000-0000-0000-000000000000'],
      ['PUT', `/v2/team/echo/blobs/uploads/00000000-0000-0000-0000-000000000000?digest=${sha256('x')}`],
      ['GET', '/v2/team/echo/blobs/uploads/00000000-0000-0000-0000-000000000000'],
      ['DELETE', '/v2/team/echo/blobs/uploads/00000000-0000-0000-0000-000000000000'],
    ];
    const wrongBasic = `Basic ${Buffer.from('admin:wrong-token-123456').toString('base64')}`;
    for (const [method, path] of routes) {
      for (const auth of [undefined, 'Bearer wrong-token-123456', wrongBasic, 'Basic !!!', `Basic ${Buffer.from(p.token).toString('base64')}`]) {
        const body = method === 'PUT' || method === 'PATCH' || method === 'POST' ? 'x' : undefined;
        const res = await fetch(`${p.gatewayUrl}${path}`, { method, headers: auth ? { authorization: auth } : {}, ...(body ? { body } : {}) });
        expect(res.status, `${method} ${path} with ${auth ?? 'no credentials'}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Basic realm="skiff"');
        if (method !== 'HEAD') expect((await res.json()).errors[0].code).toBe('UNAUTHORIZED');
      }
    }
    expect((await p.store.list()).map((e) => e.ref)).not.toContain('team/echo:stolen');
    expect(existsSync(p.store.blobPath(sha256('x')))).toBe(false);
    expect(tempFiles(p.store)).toEqual([]);
    // skopeo with a wrong password fails too.
    expect(() =>
      execFileSync('skopeo', ['inspect', '--tls-verify=false', '--creds', 'admin:wrong-token-123456', `docker://${host}/team/echo:v1`], { stdio: 'pipe' }),
    ).toThrow();
  });

  it('enforces the blob size limit and drops idle uploads with their files', async () => {
    const port = await freePort();
    const small = p.start('gateway', { SKIFF_PORT: String(port), SKIFF_MAX_BLOB_BYTES: '65536', SKIFF_UPLOAD_IDLE_MS: '1000' }, 'gateway-small');
    const url = `http://127.0.0.1:${port}`;
    await waitUntil(async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.ok === true, 'second gateway');
    const auth = { authorization: `Bearer ${p.token}` };
    try {
      const start = await fetch(`${url}/v2/big/blobs/uploads/`, { method: 'POST', headers: auth });
      const loc = start.headers.get('location')!;
      const over = await fetch(`${url}${loc}`, { method: 'PATCH', headers: auth, body: randomBytes(100_000) });
      expect(over.status).toBe(413);
      const err = (await over.json()).errors[0];
      expect(err.code).toBe('SIZE_INVALID');
      expect(err.message).toContain('65536');
      expect((await fetch(`${url}${loc}`, { headers: auth })).status).toBe(404);

      // Chunked (no Content-Length): refused once the limit is passed, not before.
      const chunked = await fetch(`${url}/v2/big/blobs/uploads/?digest=${sha256('y')}`, {
        method: 'POST',
        headers: auth,
        body: new ReadableStream({
          start(c) {
            for (let i = 0; i < 10; i++) c.enqueue(randomBytes(10_000));
            c.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
      expect(chunked.status).toBe(413);
      expect(tempFiles(p.store)).toEqual([]);

      const idle = await fetch(`${url}/v2/idle/blobs/uploads/`, { method: 'POST', headers: auth });
      const idleLoc = idle.headers.get('location')!;
      expect((await fetch(`${url}${idleLoc}`, { method: 'PATCH', headers: auth, body: 'partial' })).status).toBe(202);
      expect(tempFiles(p.store)).toHaveLength(1);
      await waitUntil(async () => tempFiles(p.store).length === 0, 'idle upload expiry', 10_000);
      expect((await fetch(`${url}${idleLoc}`, { headers: auth })).status).toBe(404);
    } finally {
      await small.stop();
    }
  });
});
