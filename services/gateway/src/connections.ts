import { STATUS_CODES, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { isIPv4, isIPv6, type Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SkiffError, toProblem } from '@skiff/contracts';
import { type Logger } from '@skiff/service-kit';
import type { GatewayConfig } from './config.js';

type Limits = Pick<GatewayConfig, 'headersTimeoutMs' | 'bodyTimeoutMs' | 'idleTimeoutMs' | 'maxConnectionsPerAddress' | 'maxConnections'>;

/**
 * Fastify's server timeouts. Node.js checks the headers timeout on a timer, so the timer runs
 * at a quarter of it (at most once a second). There is no request-wide timeout: a body's own
 * deadline (bodyDeadline, below) leaves out the uploads that may take hours.
 */
export function serverTimeouts(limits: Limits): { connectionTimeout: number; keepAliveTimeout: number; requestTimeout: number; http: ServerOptions } {
  return {
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    requestTimeout: 0,
    http: {
      headersTimeout: limits.headersTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, Math.max(25, Math.floor(limits.headersTimeoutMs / 4))),
    },
  };
}

/**
 * The key a client's connections are counted under: an IPv4 address itself (an IPv4-mapped IPv6
 * address, as a dual-stack listener sees IPv4 clients, counts as that IPv4 address), and for
 * IPv6 its /64 prefix: a single host is commonly given a whole /64, so counting addresses one by
 * one would let it open the per-address cap once per address it picks.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIPv4(address)) return address;
  const bare = address.split('%')[0]!;
  if (!isIPv6(bare)) return address;
  const groups = ipv6Groups(bare);
  return `${groups.slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (valid, without a zone), in lowercase hex. */
function ipv6Groups(address: string): string[] {
  let text = address.toLowerCase();
  // A dotted IPv4 tail (::ffff:1.2.3.4 is handled above; ::1.2.3.4 and the like here).
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (tail) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = rest === undefined ? [] : rest ? rest.split(':') : [];
  const missing = rest === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(missing).fill('0'), ...right].map((g) => Number.parseInt(g, 16).toString(16));
}

/**
 * Caps connections per client (addressKey: an IPv4 address, an IPv6 /64) and in all, closing
 * extra ones as they are accepted, before a byte of them is parsed; and closes idle connections,
 * except one whose request the gateway is still answering with nothing left to send (a long
 * invocation sends nothing until it is done). A response the client stopped reading (bytes wait
 * to be sent, and none went for the idle timeout) is cut: it would hold its buffers and its file
 * for as long as the client likes.
 */
export function limitConnections(server: Server, limits: Limits, log: Logger): void {
  // Node.js closes connections past this one itself, before making a socket of them.
  server.maxConnections = limits.maxConnections;
  const perAddress = new Map<string, number>();
  server.prependListener('connection', (socket: Socket) => {
    const address = addressKey(socket.remoteAddress ?? '');
    const held = perAddress.get(address) ?? 0;
    if (held >= limits.maxConnectionsPerAddress) {
      log.debug({ address, held }, 'refused a connection: too many from this address');
      socket.destroy();
      return;
    }
    perAddress.set(address, held + 1);
    socket.once('close', () => {
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
    });
  });
  server.on('timeout', (socket: Socket) => {
    const response = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    // Bytes the client has not taken yet (a response's own include its socket's).
    const pending = response ? response.writableLength : socket.writableLength;
    // Still answering, with nothing to send yet (waiting for the function): not the client's doing.
    if (response && !response.writableEnded && response.req.complete && pending === 0) return;
    if (pending > 0) log.debug({ address: socket.remoteAddress, url: response?.req.url, pending }, 'client stopped reading its response: closed the connection');
    socket.destroy();
  });
}

/** Requests whose body may be far larger than SKIFF_MAX_BODY_BYTES: only the idle timeout applies. */
function streamsBody(request: FastifyRequest): boolean {
  return request.url.startsWith('/v2/') || (request.method === 'POST' && request.routeOptions.url === '/v1/images');
}

const BODY_TIMEOUT_MESSAGE = 'the body did not arrive within SKIFF_BODY_TIMEOUT_MS';

/**
 * An onRequest hook: a body must have arrived bodyTimeoutMs after its headers, or the client
 * gets 408 SKIFF_REQUEST_TIMEOUT and the connection is closed. A body sent a byte at a time
 * would otherwise hold the connection for as long as the client likes, idle timeout or not.
 */
export function bodyDeadline(limits: Limits, log: Logger) {
  return (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    const raw = request.raw;
    const declared = raw.headers['content-length'];
    const hasBody = raw.headers['transfer-encoding'] !== undefined || (declared !== undefined && declared !== '0');
    if (hasBody && !raw.complete && !streamsBody(request)) {
      const timer = setTimeout(() => {
        if (raw.complete) return;
        log.debug({ callId: request.id, address: raw.socket.remoteAddress }, 'client too slow: closed the connection');
        cut(raw.socket, reply.raw, request.url);
      }, limits.bodyTimeoutMs);
      const clear = () => clearTimeout(timer);
      raw.once('end', clear);
      raw.once('close', clear);
    }
    done();
  };
}

function cut(socket: Socket, response: ServerResponse, url: string): void {
  if (!response.headersSent && socket.writable) {
    const body = JSON.stringify(toProblem(new SkiffError('SKIFF_REQUEST_TIMEOUT', BODY_TIMEOUT_MESSAGE), url));
    socket.write(`HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }
  socket.destroySoon();
}

const HEADERS_TIMEOUT_MESSAGE = 'the request headers did not arrive within SKIFF_HEADERS_TIMEOUT_MS';

/** What a request the HTTP parser refused, before any route, is answered with (Skiff's codes). */
function clientProblem(err: NodeJS.ErrnoException): { status: number; problem: ReturnType<typeof toProblem> } {
  let e: SkiffError;
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') e = new SkiffError('SKIFF_REQUEST_TIMEOUT', HEADERS_TIMEOUT_MESSAGE);
  else if (err.code === 'HPE_HEADER_OVERFLOW') e = new SkiffError('SKIFF_HEADERS_TOO_LARGE', 'the request headers are over the HTTP server\'s limit (16 KiB)');
  else e = new SkiffError('SKIFF_VALIDATION_FAILED', 'the request is not valid HTTP/1.1', { errors: [{ field: 'request', message: 'is not valid HTTP/1.1' }] });
  return { status: e.status, problem: toProblem(e, undefined) };
}

/**
 * Fastify's clientErrorHandler: a connection whose headers did not arrive in time, or that sent
 * what is not HTTP, gets application/problem+json with a code like every other error (Node.js and
 * Fastify would answer a bare 408 or 400 of their own), then the connection is closed.
 */
export function clientErrorHandler(log: Logger) {
  return (err: NodeJS.ErrnoException, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    log.debug({ code: err.code, address: socket.remoteAddress }, 'client error before a request: answered and closed the connection');
    if (socket.writable && !(socket as Socket & { _httpMessage?: ServerResponse })._httpMessage?.headersSent) {
      const { status, problem } = clientProblem(err);
      const body = JSON.stringify(problem);
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    }
    socket.destroySoon();
  };
}

/** A request whose client went away before its body was complete: the client's doing, not ours. */
export function isClientAbort(err: unknown, request: FastifyRequest): boolean {
  if (request.raw.complete) return false;
  const code = (err as { code?: unknown } | undefined)?.code;
  return request.raw.destroyed || code === 'ECONNRESET' || code === 'ECONNABORTED' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}
