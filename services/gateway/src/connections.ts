import type { Server, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
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
 * Caps connections per client address and in all, closing extra ones as they are accepted,
 * before a byte of them is parsed; and closes idle connections, except one whose request the
 * gateway is still answering (a long invocation sends nothing until it is done).
 */
export function limitConnections(server: Server, limits: Limits, log: Logger): void {
  // Node.js closes connections past this one itself, before making a socket of them.
  server.maxConnections = limits.maxConnections;
  const perAddress = new Map<string, number>();
  server.prependListener('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
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
    if (response && !response.writableEnded && response.req.complete) return;
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

/** A request whose client went away before its body was complete: the client's doing, not ours. */
export function isClientAbort(err: unknown, request: FastifyRequest): boolean {
  if (request.raw.complete) return false;
  const code = (err as { code?: unknown } | undefined)?.code;
  return request.raw.destroyed || code === 'ECONNRESET' || code === 'ECONNABORTED' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}
