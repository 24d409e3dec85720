import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { join } from 'node:path';
import { Platform, REPO } from '@skiff/testkit';

const ECHO_DIR = join(REPO, 'functions/echo');
const ECHO_ENTRY = ['/bin/sh', '/function/handler.sh'];

describe('deploy and invoke through every hop', () => {
  let p: Platform;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.startAll();
  });
  afterAll(async () => p?.close());

  it('deploys echo and gets the body back', async () => {
    const deployed = await p.deploy('echo', ECHO_DIR, ECHO_ENTRY);
    expect(deployed.status).toBe(201);
    const fn = await deployed.json();
    expect(fn).toMatchObject({ name: 'echo', version: 1, mode: 'exec', image: 'echo:latest' });
    expect(fn.imageDigest).toMatch(/^sha256:[0-9a-f]{64}$/);

    const res = await p.api('POST', '/v1/functions/echo/invoke', 'hello');
    expect(res.status).toBe(200);
    expect(res.headers.get('skiff-call-id')).toMatch(/^[0-9a-f]{32}$/);
    expect(await res.text()).toBe('hello');
  });

  it('passes binary bodies through byte for byte', async () => {
    const bytes = new Uint8Array(70_000).map((_, i) => (i * 7919) % 256);
    const res = await p.api('POST', '/v1/functions/echo/invoke', bytes, { 'content-type': 'application/octet-stream' });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(bytes))).toBe(true);
  });

  it('keeps a call id the client sent', async () => {
    const res = await p.api('POST', '/v1/functions/echo/invoke', 'x', { 'skiff-call-id': 'my-call-42' });
    expect(res.headers.get('skiff-call-id')).toBe('my-call-42');
  });

  it('lists, reads and redeploys with versions', async () => {
    const list = await (await p.api('GET', '/v1/functions')).json();
    expect(list.functions.map((f: { name: string }) => f.name)).toContain('echo');
    const same = await p.api('PUT', '/v1/functions/echo', { image: 'echo:latest' });
    expect(same.status).toBe(200);
    expect((await same.json()).version).toBe(1);
    const changed = await p.api('PUT', '/v1/functions/echo', { image: 'echo:latest', timeoutMs: 5000 });
    expect((await changed.json()).version).toBe(2);
    expect((await (await p.api('GET', '/v1/functions/echo')).json()).timeoutMs).toBe(5000);
  });

  it('refuses a second create of the same name with 409', async () => {
    const res = await p.api('POST', '/v1/functions', { name: 'echo', image: 'echo:latest' });
    expect(res.status).toBe(409);
    expect((await res.json()).code).toBe('SKIFF_FN_EXISTS');
  });

  it('rejects a bad deploy body with 400 naming the field', async () => {
    const wrongType = await p.api('POST', '/v1/functions', { name: 'bad', image: 'echo:latest', mode: 'stream-ish' });
    expect(wrongType.status).toBe(400);
    expect(wrongType.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = await wrongType.json();
    expect(problem.code).toBe('SKIFF_VALIDATION_FAILED');
    expect(problem.errors).toContainEqual(expect.objectContaining({ field: 'body.mode' }));

    const unknown = await (await p.api('POST', '/v1/functions', { name: 'bad', image: 'echo:latest', colour: 'red' })).json();
    expect(unknown.errors).toContainEqual({ field: 'body.colour', message: 'is not a known field' });

    const missing = await (await p.api('POST', '/v1/functions', { name: 'bad' })).json();
    expect(missing.errors).toContainEqual({ field: 'body.image', message: 'is required' });

    const badName = await p.api('PUT', '/v1/functions/Not_A_Name', { image: 'echo:latest' });
    expect(badName.status).toBe(400);
    expect((await badName.json()).errors[0].field).toBe('path.name');

    const malformed = await p.api('POST', '/v1/functions', '{"name": ', { 'content-type': 'application/json' });
    expect(malformed.status).toBe(400);
    expect((await malformed.json()).errors[0].field).toBe('body');
  });

  it('rejects an image that is not in the store with 422', async () => {
    const res = await p.api('PUT', '/v1/functions/ghost', { image: 'no-such-image:latest' });
    expect(res.status).toBe(422);
    expect((await res.json()).code).toBe('SKIFF_IMAGE_NOT_FOUND');
  });

  it('answers 404 with a code for an unknown function', async () => {
    const res = await p.api('POST', '/v1/functions/nobody/invoke', 'x');
    expect(res.status).toBe(404);
    expect((await res.json())).toMatchObject({ code: 'SKIFF_FN_NOT_FOUND', status: 404 });
    expect((await p.api('GET', '/v1/functions/nobody')).status).toBe(404);
    expect((await p.api('GET', '/v1/nothing-here')).status).toBe(404);
  });

  it('refuses requests without a valid token with 401 on every /v1 route', async () => {
    const routes: [string, string][] = [
      ['GET', '/v1/functions'],
      ['POST', '/v1/functions'],
      ['GET', '/v1/functions/echo'],
      ['PUT', '/v1/functions/echo'],
      ['DELETE', '/v1/functions/echo'],
      ['POST', '/v1/functions/echo/invoke'],
      ['GET', '/v1/nodes'],
      ['GET', '/v1/images'],
      ['POST', '/v1/images'],
      ['POST', '/v1/images/gc'],
    ];
    for (const [method, path] of routes) {
      for (const auth of [undefined, 'Bearer wrong-token-123456', 'Basic abc']) {
        const res = await fetch(`${p.gatewayUrl}${path}`, { method, headers: auth ? { authorization: auth } : {} });
        expect(res.status, `${method} ${path} with ${auth ?? 'no token'}`).toBe(401);
        expect((await res.json()).code).toBe('SKIFF_UNAUTHORIZED');
      }
    }
    // The function is still there: the refused DELETE did nothing.
    expect((await p.api('GET', '/v1/functions/echo')).status).toBe(200);
  });

  it('answers 413 for a body over the limit, from the declared length, before reading it', async () => {
    // Only the headers are sent: the refusal cannot depend on the body having been read.
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${p.gatewayUrl}/v1/functions/echo/invoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${p.token}`, 'content-length': String(7 * 1024 * 1024) },
      });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => (resolve({ status: res.statusCode!, body: text }), req.destroy()));
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(status).toBe(413);
    expect(JSON.parse(body).code).toBe('SKIFF_BODY_TOO_LARGE');
  });

  it('serves its OpenAPI document without a token', async () => {
    const doc = await (await fetch(`${p.gatewayUrl}/openapi.json`)).json();
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toContain('/v1/functions/{name}/invoke');
  });

  it('reports a failing function as 502 with its exit status', async () => {
    const res = await p.deploy('fails', join(REPO, 'test/fixtures/functions/inspect'), ['/bin/sh', '-c', 'echo oops >&2; exit 3']);
    expect(res.status).toBe(201);
    const out = await p.api('POST', '/v1/functions/fails/invoke', '');
    expect(out.status).toBe(502);
    const problem = await out.json();
    expect(problem.code).toBe('SKIFF_FN_FAILED');
    expect(problem.detail).toContain('status 3');
    expect(problem.detail).toContain('oops');
  });

  it('stops a function at its deadline with 504', async () => {
    // It would sleep an hour, far past the test's own timeout: an answer at all is the deadline stopping it.
    const res = await p.deploy('sleeper', join(REPO, 'test/fixtures/functions/inspect'), ['/bin/sleep', '3600'], { timeoutMs: 500 });
    expect(res.status).toBe(201);
    const out = await p.api('POST', '/v1/functions/sleeper/invoke', '');
    expect(out.status).toBe(504);
    expect((await out.json()).code).toBe('SKIFF_DEADLINE_EXCEEDED');
  });

  it('deletes a function', async () => {
    expect((await p.api('DELETE', '/v1/functions/echo')).status).toBe(204);
    expect((await p.api('POST', '/v1/functions/echo/invoke', 'x')).status).toBe(404);
    expect((await p.api('DELETE', '/v1/functions/echo')).status).toBe(404);
  });
});
