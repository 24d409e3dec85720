import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as loadYaml } from 'yaml';
import { Platform, REPO } from '@skiff/testkit';

const HELLO = join(REPO, 'functions/hello');
const helloSchema = (loadYaml(readFileSync(join(HELLO, 'function.yaml'), 'utf8')) as { inputSchema: object }).inputSchema;
/** How long a hostile request and the /healthz sent behind it may take to answer at all. */
const ANSWER_BOUND_MS = 30_000;

/**
 * docs/security.md #35 and #36: JSON Schemas that users give at deploy cannot hold the gateway,
 * cannot collide with each other, cannot be stepped around with another content type, and
 * /openapi.json shows deployed functions only to a caller who may invoke them.
 */
describe('the gateway under hostile JSON Schemas', () => {
  let p: Platform;

  interface Answer {
    status: number;
    body: string;
  }

  /** Sends one request on its own connection and collects the answer. */
  const send = (method: string, path: string, body: string, headers: Record<string, string>, sent: () => void = () => {}) =>
    new Promise<Answer>((resolve, reject) => {
      const req = request(`${p.gatewayUrl}${path}`, { method, headers: { authorization: `Bearer ${p.token}`, 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject).on('finish', sent);
      req.end(body);
    });

  /**
   * Sends a hostile request and, once its body is on the wire and before its answer can have
   * come back, a GET /healthz: both must answer. A gateway whose event loop the hostile request
   * holds answers neither within the bound.
   */
  const hostile = async (method: string, path: string, body: string) => {
    let health: Promise<Response> | undefined;
    const answer = send(method, path, body, { 'content-type': 'application/json' }, () => {
      health = fetch(`${p.gatewayUrl}/healthz`);
      health.catch(() => {}); // awaited below; a gateway killed at the end must not leave it unhandled
    });
    answer.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer to ${method} ${path} or /healthz within ${ANSWER_BOUND_MS} ms`)), ANSWER_BOUND_MS)));
    try {
      const res = await Promise.race([answer, bound]);
      expect(health, 'the /healthz request was sent while the hostile one was in flight').toBeDefined();
      const healthz = await Promise.race([health!, bound]);
      expect(healthz.status).toBe(200);
      return { status: res.status, body: JSON.parse(res.body) as { code: string; detail: string; errors?: { field: string; message: string }[] } };
    } finally {
      clearTimeout(timer);
    }
  };

  const invoke = (name: string, body: string, contentType?: string) =>
    p.api('POST', `/v1/functions/${name}/invoke`, body, contentType ? { 'content-type': contentType } : {});

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.buildNodeRuntime();
    await p.startAll();
    const res = await p.deployNode('hello', HELLO, { inputSchema: helloSchema });
    expect(res.status, await res.clone().text()).toBe(201);
  }, 180_000);
  afterAll(async () => {
    await p?.close();
  });

  it('refuses an enum bomb with 400 naming the limit, and answers /healthz meanwhile', async () => {
    const schema = `{"enum":[${Array.from({ length: 100_000 }, (_, i) => i).join(',')}]}`;
    const res = await hostile('PUT', '/v1/functions/enum-bomb', `{"image":"hello:latest","mode":"stream","inputSchema":${schema}}`);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('SKIFF_SCHEMA_TOO_COMPLEX');
    expect(res.body.errors).toEqual([{ field: 'body.inputSchema.enum', message: 'has 100000 values; the limit maxEnumValues is 1000' }]);
    expect((await p.api('GET', '/v1/functions/enum-bomb')).status).toBe(404);
  });

  it('refuses a schema nested 10000 deep or over 64 KiB with 400, and answers /healthz meanwhile', async () => {
    const levels = 10_000;
    const deep = `${'{"not":'.repeat(levels)}{}${'}'.repeat(levels)}`;
    const nested = await hostile('PUT', '/v1/functions/deep', `{"image":"hello:latest","mode":"stream","outputSchema":${deep}}`);
    expect(nested.status).toBe(400);
    expect(nested.body).toMatchObject({ code: 'SKIFF_SCHEMA_TOO_COMPLEX', detail: expect.stringMatching(/^body\.outputSchema(\.not)+: nests deeper than 32 levels; the limit maxDepth is 32$/) });
    const huge = JSON.stringify({ image: 'hello:latest', mode: 'stream', inputSchema: { type: 'string', description: 'x'.repeat(200_000) } });
    const big = await hostile('PUT', '/v1/functions/huge', huge);
    expect(big.status).toBe(400);
    expect(big.body).toMatchObject({ code: 'SKIFF_SCHEMA_TOO_COMPLEX', errors: [{ field: 'body.inputSchema', message: expect.stringMatching(/the limit maxBytes is 65536$/) }] });
  });

  it('answers an invoke whose input would make a backtracking pattern run for hours, and /healthz meanwhile', async () => {
    const schema = { type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } }, required: ['s'] };
    const deployed = await p.api('PUT', '/v1/functions/redos', { image: 'hello:latest', mode: 'stream', inputSchema: schema });
    expect(deployed.status, await deployed.clone().text()).toBe(201);
    const res = await hostile('POST', '/v1/functions/redos/invoke', JSON.stringify({ s: `${'a'.repeat(40)}!` }));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'SKIFF_VALIDATION_FAILED', errors: [{ field: 'body.s', message: expect.stringContaining('must match pattern') }] });
  });

  it('answers invokes with strings hostile to each format of ajv-formats (url\'s quadratic one at 2.2 MB among them), and /healthz meanwhile', async () => {
    const MB = 1024 * 1024;
    // The worst inputs measured (docs/decisions.md, "Formats in user schemas"); each ends in what
    // makes it no match, so the engine has tried every way before it says no.
    const attacks: Record<string, string> = {
      url: `ftp://172.30.3.56${'4.1.6.7:155'.repeat(200_000)}\u0000`,
      email: `a@${'a-'.repeat(MB / 2)}!`,
      hostname: `${'a.'.repeat(MB / 2)}-`,
      uri: `a:${'/'.repeat(MB)}\u0001`,
      'uri-reference': `a://${'a'.repeat(MB)} `,
      'uri-template': `${'{a'.repeat(MB / 2)}`,
      'date-time': `2020-01-01T00:00:00.${'1'.repeat(MB)}x`,
      'iso-date-time': `2020-01-01 00:00:00.${'1'.repeat(MB)}x`,
      time: `00:00:00.${'1'.repeat(MB)}x`,
      date: `${'1'.repeat(MB)}x`,
      duration: `P${'1Y'.repeat(MB / 2)}`,
      ipv4: `${'1.'.repeat(MB / 2)}x`,
      ipv6: `${'1:'.repeat(MB / 2)}x`,
      uuid: `${'a-'.repeat(MB / 2)}x`,
      regex: '('.repeat(MB),
      byte: `${'AAAA'.repeat(MB / 4)}!`,
      'json-pointer': `${'/'.repeat(MB)}~`,
      'relative-json-pointer': `1${'/a'.repeat(MB / 2)}~`,
      'json-pointer-uri-fragment': `#${'/a'.repeat(MB / 2)}~`,
    };
    const properties = Object.fromEntries(Object.keys(attacks).map((f) => [f, { type: 'string', format: f }]));
    const deployed = await p.api('PUT', '/v1/functions/formats', { image: 'hello:latest', mode: 'stream', inputSchema: { type: 'object', properties } });
    expect(deployed.status, await deployed.clone().text()).toBe(201);
    const answered: string[] = [];
    for (const [format, attack] of Object.entries(attacks)) {
      const res = await hostile('POST', '/v1/functions/formats/invoke', JSON.stringify({ [format]: attack }));
      expect(res.status, format).toBe(400);
      expect(res.body.errors, format).toEqual([expect.objectContaining({ field: `body.${format}`, message: `must match format "${format}"` })]);
      answered.push(format);
    }
    expect(answered).toEqual(Object.keys(attacks));
  });

  it('keeps each schema in a namespace of its own: the same $id deploys twice, in two functions, and after a restart', async () => {
    const schema = { ...helloSchema, $id: 'https://example.com/schemas/hello-input' };
    for (const name of ['typed', 'typed', 'typed-too']) {
      const res = await p.api('PUT', `/v1/functions/${name}`, { image: 'hello:latest', mode: 'stream', inputSchema: schema });
      expect(res.status, await res.clone().text()).toBeLessThan(300);
    }
    const gateway = p.services.find((s) => s.name === 'gateway' && s.child.exitCode === null && s.child.signalCode === null)!;
    await gateway.stop();
    await p.startGateway();
    for (const name of ['typed', 'typed-too']) {
      const ok = await invoke(name, '{"name":"Ada"}', 'application/json');
      expect(await ok.json()).toEqual({ greeting: 'Hello, Ada!' });
      const bad = await invoke(name, '{"name":7}', 'application/json');
      expect(bad.status).toBe(400);
      expect((await bad.json()).errors).toEqual([expect.objectContaining({ field: 'body.name' })]);
    }
  });

  it('takes JSON only for a function with an input schema: 415 for any other content type', async () => {
    for (const type of ['text/plain', '*/*', 'application/octet-stream', undefined]) {
      const res = await invoke('hello', '{"name":"Ada"}', type);
      expect(res.status, `content type ${type}`).toBe(415);
      expect(await res.json()).toMatchObject({ code: 'SKIFF_UNSUPPORTED_MEDIA_TYPE', detail: expect.stringContaining('application/json only') });
    }
    expect((await invoke('hello', '{"name":"Ada"}', 'application/json; charset=utf-8')).status).toBe(200);
  });

  it('shows deployed functions in /openapi.json only with a valid token', async () => {
    const open = await fetch(`${p.gatewayUrl}/openapi.json`);
    expect(open.status).toBe(200);
    const anonymous = (await open.json()) as { paths: Record<string, unknown> };
    expect(Object.keys(anonymous.paths)).toEqual(expect.arrayContaining(['/v1/functions', '/v1/functions/{name}/invoke', '/healthz']));
    expect(Object.keys(anonymous.paths).filter((path) => /^\/v1\/functions\/[a-z]/.test(path))).toEqual([]);
    const withToken = (await (await p.api('GET', '/openapi.json')).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(withToken.paths)).toEqual(expect.arrayContaining(['/v1/functions/hello/invoke', '/v1/functions/redos/invoke']));
    const wrong = await fetch(`${p.gatewayUrl}/openapi.json`, { headers: { authorization: 'Bearer not-a-token' } });
    expect(wrong.status).toBe(401);
  });
});
