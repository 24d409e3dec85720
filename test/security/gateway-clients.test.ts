import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Platform, waitUntil } from '@skiff/testkit';

// Small limits, so every attack is cut within seconds (the defaults are in the README).
const HEADERS_TIMEOUT_MS = 800;
const BODY_TIMEOUT_MS = 1200;
const IDLE_TIMEOUT_MS = 6000;
const PER_ADDRESS = 8;
const TOTAL = 12;
/** The pace of a slow client: one byte this often, at most MAX_TRICKLE bytes. */
const TRICKLE_MS = 100;
const MAX_TRICKLE = 100;

/** A client on a bare socket, from a loopback address of its choice (all of 127/8 is local). */
class RawClient {
  received = '';
  closed = false;
  private constructor(readonly socket: Socket) {
    socket.on('data', (d) => (this.received += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => (this.closed = true));
  }

  static open(port: number, localAddress = '127.0.0.1', host = localAddress.includes(':') ? '::1' : '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, localAddress });
      socket.once('connect', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  write(text: string): void {
    if (!this.closed) this.socket.write(text);
  }

  get status(): number | undefined {
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(this.received);
    return m ? Number(m[1]) : undefined;
  }

  /** Waits (bounded) until the server has closed the connection. */
  untilClosed(what: string, ms = 10_000): Promise<void> {
    return waitUntil(async () => this.closed, what, ms);
  }

  /** Waits (bounded) until a whole response with a body has arrived. */
  untilResponse(what: string, ms = 10_000): Promise<void> {
    return waitUntil(async () => /\r\n\r\n/.test(this.received) && this.received.endsWith('}'), what, ms);
  }

  /** Sends `text` one byte per TRICKLE_MS until the server closes the connection; returns the bytes sent. */
  async trickle(text: string): Promise<number> {
    let sent = 0;
    for (const ch of text.slice(0, MAX_TRICKLE)) {
      if (this.closed) break;
      this.write(ch);
      sent++;
      await new Promise((r) => setTimeout(r, TRICKLE_MS));
    }
    return sent;
  }

  close(): void {
    this.socket.destroy();
  }
}

const healthz = 'GET /healthz HTTP/1.1\r\nhost: gateway\r\n\r\n';

/** The response is Skiff's application/problem+json with this status and code. */
function expectProblem(c: RawClient, status: number, code: string): void {
  expect(c.status, c.received).toBe(status);
  const [head, body] = c.received.split('\r\n\r\n') as [string, string | undefined];
  expect(head.toLowerCase()).toContain('content-type: application/problem+json');
  expect(JSON.parse(body ?? '')).toMatchObject({ status, code });
}

/** docs/security.md #24 and #34: slow, idle, numerous and vanishing clients against a real gateway. */
describe('the gateway under hostile clients', () => {
  let p: Platform;
  const open: RawClient[] = [];
  const client = async (localAddress?: string) => {
    const c = await RawClient.open(p.port, localAddress);
    open.push(c);
    return c;
  };
  /** A keep-alive connection that has had one /healthz answered (so the gateway counts it). */
  const answered = async (localAddress?: string) => {
    const c = await client(localAddress);
    c.write(healthz);
    await c.untilResponse(`/healthz from ${localAddress ?? '127.0.0.1'}`);
    expect(c.status).toBe(200);
    return c;
  };
  /** Whether a new connection from this address gets /healthz answered 200 (false: refused). */
  const healthzAnswers = async (localAddress?: string) => {
    const c = await client(localAddress);
    c.write(healthz);
    await waitUntil(async () => c.closed || /\r\n\r\n.*\}/s.test(c.received), 'an answer or a close');
    c.close();
    return c.status === 200;
  };
  const closeAll = async () => {
    for (const c of open.splice(0)) c.close();
    // the gateway counts a connection out when it sees it close
    await waitUntil(() => healthzAnswers('127.0.0.9'), 'gateway after closing the clients');
    for (const c of open.splice(0)) c.close();
  };
  const gatewayLog = () => readFileSync(join(p.dataDir, 'gateway.log'), 'utf8').split('\n').filter(Boolean);

  beforeAll(async () => {
    p = await Platform.create();
    await p.startGateway({
      SKIFF_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      SKIFF_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
      SKIFF_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS),
      SKIFF_MAX_CONNECTIONS_PER_ADDRESS: String(PER_ADDRESS),
      SKIFF_MAX_CONNECTIONS: String(TOTAL),
      SKIFF_LOG_LEVEL: 'debug',
    });
  });
  // Each test starts with no connection of the last one left.
  afterEach(closeAll);
  afterAll(async () => {
    for (const c of open) c.close();
    await p?.close();
  });

  it('cuts a client sending its headers a byte every 100 ms at the headers timeout (800 ms): 408, closed', async () => {
    const c = await client();
    c.write('GET /healthz HTTP/1.1\r\nhost: gateway\r\n');
    const sent = await c.trickle(`x-slow: ${'a'.repeat(MAX_TRICKLE)}`);
    await c.untilClosed('slow headers to be cut');
    expect(c.status, `after ${sent} header bytes`).toBe(408);
    expect(sent).toBeLessThan(MAX_TRICKLE);
    // Skiff's problem+json with a code, as for every other error (Node.js's own 408 has no body).
    expectProblem(c, 408, 'SKIFF_REQUEST_TIMEOUT');
  });

  it('answers what is not HTTP with 400 SKIFF_VALIDATION_FAILED as problem+json, and closes', async () => {
    const c = await client();
    c.write('HELLO THERE\r\n\r\n');
    await c.untilClosed('the connection to be closed');
    expectProblem(c, 400, 'SKIFF_VALIDATION_FAILED');
  });

  it('answers headers over 16 KiB with 431 SKIFF_HEADERS_TOO_LARGE as problem+json, and closes', async () => {
    const c = await client();
    c.write(`GET /healthz HTTP/1.1\r\nhost: gateway\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
    await c.untilClosed('the connection to be closed');
    expectProblem(c, 431, 'SKIFF_HEADERS_TOO_LARGE');
  });

  it('answers headers with Content-Length 6000000 and 1 body byte, without a token, with 401 and closes, reading no more', async () => {
    const c = await client();
    c.write('POST /v1/functions/echo/invoke HTTP/1.1\r\nhost: gateway\r\ncontent-length: 6000000\r\n\r\nx');
    // Without the check before the body, the gateway waits for the 5999999 bytes not sent and
    // the body timeout answers 408 instead.
    await c.untilClosed('the refused connection to close');
    expect(c.status, c.received).toBe(401);
    expect(c.received).toContain('SKIFF_UNAUTHORIZED');
    expect(c.received.toLowerCase()).toContain('connection: close');
  });

  it('cuts the same request with a token, its body sent a byte every 100 ms, at the body timeout (1200 ms): 408 SKIFF_REQUEST_TIMEOUT', async () => {
    const c = await client();
    c.write(`POST /v1/functions/echo/invoke HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer ${p.token}\r\ncontent-length: 6000000\r\n\r\n`);
    const sent = await c.trickle('b'.repeat(MAX_TRICKLE));
    await c.untilClosed('the slow body to be cut');
    expect(c.status, `after ${sent} body bytes: ${c.received}`).toBe(408);
    expect(c.received).toContain('SKIFF_REQUEST_TIMEOUT');
    expect(sent).toBeLessThan(MAX_TRICKLE);
  });

  it('cuts a connection that sends nothing at the headers timeout (408), and a keep-alive one after its response at the idle timeout (6000 ms)', async () => {
    const silent = await client();
    const kept = await answered();
    await silent.untilClosed('the silent connection to be closed');
    expect(silent.status).toBe(408);
    expectProblem(silent, 408, 'SKIFF_REQUEST_TIMEOUT');
    await kept.untilClosed('the idle keep-alive connection to be closed', IDLE_TIMEOUT_MS + 10_000);
    expect(kept.received.match(/HTTP\/1\.1 /g), 'one response only').toHaveLength(1);
  });

  // These two use addresses of their own: the harness's fetch may still hold a keep-alive
  // connection from 127.0.0.1.
  it('refuses 4 connections past 8 from 127.0.0.5 (8 answered, 4 closed unanswered) while /healthz answers 200 from 127.0.0.6', async () => {
    const held: RawClient[] = [];
    for (let i = 0; i < PER_ADDRESS; i++) held.push(await answered('127.0.0.5'));
    const extra: RawClient[] = [];
    for (let i = 0; i < 4; i++) extra.push(await client('127.0.0.5'));
    for (const c of extra) c.write(healthz);
    for (const [i, c] of extra.entries()) await c.untilClosed(`extra connection ${i + 1} to be refused`);
    expect(extra.map((c) => c.received)).toEqual(['', '', '', '']);
    expect((await answered('127.0.0.6')).status).toBe(200);
    // One of the 8 closes, and the address may have one more.
    held[0]!.close();
    await waitUntil(() => healthzAnswers('127.0.0.5'), 'a ninth connection from 127.0.0.5 once one of the 8 closed');
  });

  it('refuses connections past 12 in all: of 14 opened (8 from 127.0.0.7, 6 from 127.0.0.8), those past 12 are closed unanswered; /healthz answers on the held ones', async () => {
    const held: RawClient[] = [];
    for (let i = 0; i < PER_ADDRESS; i++) held.push(await answered('127.0.0.7'));
    const refused: RawClient[] = [];
    for (let i = 0; i < 6; i++) {
      const c = await client('127.0.0.8');
      c.write(healthz);
      await waitUntil(async () => c.closed || c.status !== undefined, `connection ${PER_ADDRESS + i + 1}: an answer or a close`);
      (c.status === 200 ? held : refused).push(c);
    }
    // 12 in all, the harness's own keep-alive connection among them if it is still open.
    expect(held.length, `${held.length} held, ${refused.length} refused`).toBeGreaterThanOrEqual(TOTAL - 1);
    expect(held.length).toBeLessThanOrEqual(TOTAL);
    expect(refused.map((c) => c.received)).toEqual(refused.map(() => ''));
    const first = held[0]!;
    first.received = '';
    first.write(healthz);
    await first.untilResponse('/healthz on a held connection');
    expect(first.status).toBe(200);
  });

  it('cuts a client that stops reading a 32 MiB blob it asked for, once nothing was sent for the idle timeout (6000 ms)', async () => {
    const blob = randomBytes(32 * 1024 * 1024);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const basic = `Basic ${Buffer.from(`admin:${p.token}`).toString('base64')}`;
    const put = await fetch(`${p.gatewayUrl}/v2/slow/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/octet-stream' }, body: blob });
    expect(put.status).toBe(201);
    const c = await client('127.0.0.10');
    c.write(`GET /v2/slow/blobs/${digest} HTTP/1.1\r\nhost: gateway\r\nauthorization: ${basic}\r\n\r\n`);
    await waitUntil(async () => c.received.includes('\r\n\r\n'), 'the response headers');
    expect(c.status).toBe(200);
    // The client reads no more: the kernel's buffers fill, then the gateway's.
    c.socket.pause();
    const cut = () => gatewayLog().some((l) => l.includes('client stopped reading its response') && l.includes('/v2/slow/blobs/'));
    await waitUntil(async () => cut(), 'the gateway to cut the client that stopped reading', IDLE_TIMEOUT_MS + 20_000);
    c.socket.resume();
    await c.untilClosed('the connection to end');
    const body = c.received.length - c.received.indexOf('\r\n\r\n') - 4;
    expect(body, 'bytes of the blob the client got').toBeLessThan(blob.length);
  });

  it('cuts a client that pipelines 2000 GET /openapi.json and reads none of the answers', async () => {
    const c = await client('127.0.0.11');
    c.socket.pause();
    c.socket.write('GET /openapi.json HTTP/1.1\r\nhost: gateway\r\n\r\n'.repeat(2000));
    const cut = () => gatewayLog().some((l) => l.includes('client stopped reading its response') && l.includes('/openapi.json'));
    await waitUntil(async () => cut(), 'the gateway to cut the client that reads nothing', IDLE_TIMEOUT_MS + 20_000);
    // A paused client learns of the close only by reading.
    c.socket.resume();
    await c.untilClosed('the connection to end');
    expect(c.received.match(/HTTP\/1\.1 200 /g)?.length ?? 0).toBeLessThan(2000);
  });

  it('logs 5 uploads the client aborts mid-body as client events (debug), with no level-50 line', async () => {
    const path = '/v1/functions/aborted-upload/invoke';
    const aborts = 5;
    for (let i = 0; i < aborts; i++) {
      const c = await client();
      c.write(`POST ${path} HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer ${p.token}\r\ncontent-length: 1000\r\nexpect: 100-continue\r\n\r\n`);
      // The gateway says "100 Continue" as it takes the request: it is reading the body now.
      await waitUntil(async () => c.received.startsWith('HTTP/1.1 100'), '100 Continue');
      c.write('0123456789');
      c.close();
    }
    const mine = (line: string) => line.includes(path);
    const seen = () => gatewayLog().filter((l) => mine(l) && (l.includes('"level":20') || l.includes('"level":50')));
    await waitUntil(async () => seen().length >= aborts, `${aborts} log lines about the aborted uploads`).catch(() => {});
    expect(gatewayLog().filter((l) => l.includes('"level":50'))).toEqual([]);
    expect(seen().filter((l) => l.includes('"level":20'))).toHaveLength(aborts);
  });
});

/** docs/security.md #34: the total cap keeps the gateway below its open-file limit. */
describe('the gateway at its open-file limit', () => {
  const FILE_LIMIT = 300;
  // (300 - 64) / 2: each connection may hold a second file, and 64 stay for the gateway's own.
  const CAP = 118;
  const OPENED = 320;
  let p: Platform;
  const open: RawClient[] = [];

  beforeAll(async () => {
    p = await Platform.create();
    await p.startGateway({ SKIFF_MAX_CONNECTIONS_PER_ADDRESS: '1000' }, ['prlimit', `--nofile=${FILE_LIMIT}`, '--']);
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await p?.close();
  });

  it(`holds ${CAP} of ${OPENED} connections under a ${FILE_LIMIT}-file limit, refuses the rest, and still opens files (GET /v1/images 200)`, async () => {
    const held: RawClient[] = [];
    let refused = 0;
    for (let i = 0; i < OPENED; i++) {
      const c = await RawClient.open(p.port, '127.0.0.21').catch(() => undefined);
      if (!c) {
        refused++;
        continue;
      }
      open.push(c);
      c.write(healthz);
      await waitUntil(async () => c.closed || /\r\n\r\n.*\}/s.test(c.received), `connection ${i + 1}: an answer or a close`);
      if (c.status === 200) held.push(c);
      else refused++;
    }
    // Reading the store's index needs a file of its own: there is one left.
    const first = held[0]!;
    first.received = '';
    first.write(`GET /v1/images HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer ${p.token}\r\n\r\n`);
    await waitUntil(async () => first.closed || /\r\n\r\n.*\}/s.test(first.received), 'GET /v1/images on a held connection');
    expect(first.status, `${held.length} held, ${refused} refused: ${first.received}`).toBe(200);
    // The harness's own keep-alive connection may be one of the CAP.
    expect(held.length, `${held.length} held, ${refused} refused`).toBeGreaterThanOrEqual(CAP - 1);
    expect(held.length).toBeLessThanOrEqual(CAP);
  });
});

/** docs/security.md #34: on a dual-stack listener, IPv6 clients are counted per /64, IPv4 ones per address. */
describe('the gateway on IPv6 (::)', () => {
  const CAP = 4;
  let p: Platform;
  const open: RawClient[] = [];
  const answers = async (localAddress: string) => {
    const c = await RawClient.open(p.port, localAddress, localAddress.includes(':') ? '::1' : '127.0.0.1');
    open.push(c);
    c.write(healthz);
    await waitUntil(async () => c.closed || /\r\n\r\n.*\}/s.test(c.received), `${localAddress}: an answer or a close`);
    return c.status === 200;
  };

  beforeAll(async () => {
    p = await Platform.create();
    await p.startGateway({ SKIFF_HOST: '::', SKIFF_MAX_CONNECTIONS_PER_ADDRESS: String(CAP), SKIFF_LOG_LEVEL: 'debug' });
  });
  afterAll(async () => {
    for (const c of open) c.close();
    await p?.close();
  });

  it(`holds ${CAP} connections from ::1 and refuses the next; 127.0.0.12 (seen as ::ffff:127.0.0.12) has ${CAP} of its own`, async () => {
    const v6: boolean[] = [];
    for (let i = 0; i <= CAP; i++) v6.push(await answers('::1'));
    expect(v6).toEqual([...Array<boolean>(CAP).fill(true), false]);
    const v4: boolean[] = [];
    for (let i = 0; i <= CAP; i++) v4.push(await answers('127.0.0.12'));
    expect(v4).toEqual([...Array<boolean>(CAP).fill(true), false]);
    // The refusals name the keys they were counted under: the /64, and the IPv4 address itself.
    const refused = readFileSync(join(p.dataDir, 'gateway.log'), 'utf8').split('\n').filter((l) => l.includes('too many from this address'));
    expect(refused.map((l) => (JSON.parse(l) as { address: string }).address)).toEqual(['0:0:0:0::/64', '127.0.0.12']);
  });
});
