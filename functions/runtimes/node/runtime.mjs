// Skiff's Node.js runtime for `stream` mode (docs/runtime-protocol.md).
//
// One process serves many invocations: it loads the function module named by SKIFF_HANDLER,
// says `ready` on fd 3, then runs each `invoke` frame it receives — concurrently — and answers
// with a `result` or an `error` frame carrying the same id. stdout and stderr belong to the
// function. Plain JavaScript, no dependencies: it runs on a bare node base image.
//
// Started with SKIFF_STEM=1 instead of SKIFF_HANDLER, it is a stem cell: it boots, says `stem`
// on fd 3 and waits for one `load` frame, which gives it the function's environment and working
// directory; then it loads the function as above (docs/runtime-protocol.md, "Stem cells").
//
// Exit status: 0 after `shutdown`, SIGTERM/SIGINT or the worker closing fd 3 (in-flight work
// finished first); 1 when the function cannot be loaded or an error escapes an invocation;
// 2 when the worker broke the protocol.

import net from 'node:net';

import { pathToFileURL } from 'node:url';

const PROTOCOL = 1;
const MAGIC_0 = 0x53; // 'S'
const MAGIC_1 = 0x4b; // 'K'
const PREFIX = 12;
const MAX_HEADER = 64 * 1024;
const INLINE_BODY = 4096;
const MAX_MESSAGE = 4 * 1024;
const MAX_STACK = 16 * 1024;
const EMPTY = Buffer.alloc(0);

const fd = positiveInt(process.env.SKIFF_STREAM_FD, 3);
const stem = process.env.SKIFF_STEM === '1' && !process.env.SKIFF_HANDLER;
// The function's own settings: from the environment, a stem cell's once it is loaded.
let functionName = '';
let functionVersion;
let maxBody = 16 * 1024 * 1024;

function configure(env) {
  functionName = env.SKIFF_FUNCTION ?? '';
  functionVersion = env.SKIFF_FUNCTION_VERSION === undefined ? undefined : Number(env.SKIFF_FUNCTION_VERSION);
  maxBody = positiveInt(env.SKIFF_MAX_BODY_BYTES, 16 * 1024 * 1024);
}

function positiveInt(raw, fallback) {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0 || n > 0xffffffff) fatal(1, `runtime: ${raw} is not a positive integer`);
  return n;
}

// ---- logging: one JSON line per call on stderr ----

function logLine(level, msg, invocationId, fields) {
  const line = { level, time: Date.now(), msg: String(msg), fn: functionName, invocationId };
  if (fields !== undefined && fields !== null && typeof fields === 'object') {
    for (const k of Object.keys(fields)) if (!(k in line)) line[k] = fields[k];
  }
  let text;
  try {
    text = JSON.stringify(line);
  } catch {
    text = JSON.stringify({ level, time: line.time, msg: line.msg, fn: functionName, invocationId, fieldsError: 'log fields are not JSON' });
  }
  process.stderr.write(text + '\n');
}

function fatal(code, msg, err) {
  const line = { level: 'fatal', time: Date.now(), msg, fn: functionName };
  if (err !== undefined) line.err = err instanceof Error ? (err.stack ?? String(err)) : String(err);
  process.stderr.write(JSON.stringify(line) + '\n');
  process.exit(code);
}

// Anything that escapes an invocation (a timer that throws, a promise nobody awaits) may have
// left the process in any state: say so and let the worker replace the instance.
process.on('uncaughtException', (err) => fatal(1, 'uncaught exception', err));
process.on('unhandledRejection', (err) => fatal(1, 'unhandled promise rejection', err));

// ---- frames ----

function send(header, body = EMPTY) {
  const json = JSON.stringify(header);
  const headerLen = Buffer.byteLength(json);
  const bodyLen = body.length;
  const inline = bodyLen <= INLINE_BODY;
  const head = Buffer.allocUnsafe(PREFIX + headerLen + (inline ? bodyLen : 0));
  head[0] = MAGIC_0;
  head[1] = MAGIC_1;
  head[2] = PROTOCOL;
  head[3] = 0;
  head.writeUInt32BE(headerLen, 4);
  head.writeUInt32BE(bodyLen, 8);
  head.write(json, PREFIX, headerLen, 'utf8');
  if (inline) {
    if (bodyLen > 0) head.set(body, PREFIX + headerLen);
    sock.write(head);
  } else {
    sock.cork();
    sock.write(head);
    sock.write(body);
    sock.uncork();
  }
}

let parts = [];
let buffered = 0;
let need = PREFIX;
let headerLen = -1;

function onData(chunk) {
  parts.push(chunk);
  buffered += chunk.length;
  while (buffered >= need) {
    let buf = parts[0];
    if (buf.length < need) {
      buf = Buffer.concat(parts, buffered);
      parts = [buf];
    }
    if (headerLen < 0) {
      if (buf[0] !== MAGIC_0 || buf[1] !== MAGIC_1) return protocolError('not a frame (bad magic)');
      if (buf[2] !== PROTOCOL) return protocolError(`frame version ${buf[2]} is not ${PROTOCOL}`);
      if (buf[3] !== 0) return protocolError('frame flags are not 0');
      headerLen = buf.readUInt32BE(4);
      const bodyLen = buf.readUInt32BE(8);
      if (headerLen === 0 || headerLen > MAX_HEADER) return protocolError(`frame header of ${headerLen} bytes`);
      if (bodyLen > maxBody) return protocolError(`frame body of ${bodyLen} bytes is over SKIFF_MAX_BODY_BYTES=${maxBody}`);
      need = PREFIX + headerLen + bodyLen;
      continue;
    }
    const headerEnd = PREFIX + headerLen;
    const end = need;
    let header;
    try {
      header = JSON.parse(buf.toString('utf8', PREFIX, headerEnd));
    } catch {
      return protocolError('frame header is not JSON');
    }
    const body = end === headerEnd ? EMPTY : buf.subarray(headerEnd, end);
    if (buf.length === end) parts.shift();
    else parts[0] = buf.subarray(end);
    buffered -= end;
    need = PREFIX;
    headerLen = -1;
    onMessage(header, body);
  }
}

function protocolError(what) {
  fatal(2, `runtime: the worker broke the protocol: ${what}`);
}

// ---- invocations ----

let handler;
let inflight = 0;
let draining = false;
let latestDeadline = 0;

function onMessage(h, body) {
  if (h === null || typeof h !== 'object') return protocolError('frame header is not an object');
  if (waitingForLoad) {
    if (h.type === 'load') return load(h);
    if (h.type === 'shutdown') return exit();
    return protocolError(`${JSON.stringify(h.type)} before load`);
  }
  if (h.type === 'invoke') {
    if (handler === undefined) return protocolError('invoke before ready');
    if (typeof h.id !== 'string' || h.id === '' || typeof h.deadline !== 'number') return protocolError('invoke needs a string id and a numeric deadline');
    if (draining) {
      send({ type: 'error', id: h.id, code: 'SHUTTING_DOWN', message: 'the runtime is shutting down' });
      return;
    }
    inflight++;
    if (h.deadline > latestDeadline) latestDeadline = h.deadline;
    run(h, body);
    return;
  }
  if (h.type === 'shutdown') return drain();
  protocolError(`unknown message type ${JSON.stringify(h.type)}`);
}

// ---- stem cells ----

let waitingForLoad = false;

/**
 * The function's environment replaces the stem cell's entirely (nothing of the stem's stays),
 * then its working directory, then the function is loaded as in a runtime started for it.
 */
function load(h) {
  if (!Array.isArray(h.env) || !h.env.every((kv) => typeof kv === 'string' && kv.indexOf('=') > 0)) return protocolError('load needs env, a list of NAME=value strings');
  if (typeof h.cwd !== 'string' || !h.cwd.startsWith('/')) return protocolError('load needs cwd, an absolute path');
  waitingForLoad = false;
  sock.pause();
  for (const k of Object.keys(process.env)) delete process.env[k];
  for (const kv of h.env) {
    const eq = kv.indexOf('=');
    process.env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  configure(process.env);
  try {
    process.chdir(h.cwd);
  } catch (err) {
    fatal(1, `runtime: cannot change to the function's working directory ${h.cwd}`, err);
  }
  void start();
}

/**
 * What a stem cell does while it waits, so that the function's first call does not: the module
 * loader's first dynamic import, and the standard streams the function logs on.
 */
async function prime() {
  await import('data:text/javascript,export default 0');
  void process.stdout;
  void process.stderr;
}

class Context {
  constructor(h) {
    this.invocationId = h.callId ?? h.id;
    this.functionName = functionName;
    this.functionVersion = functionVersion;
    this.deadline = h.deadline;
    this.traceparent = h.traceparent;
    this.tracestate = h.tracestate;
    // Async invocations: the attempt (1, 2, …) and the caller's Idempotency-Key, if any.
    this.attempt = h.attempt ?? 1;
    this.idempotencyKey = h.idempotencyKey;
    // Subject triggers: the NATS message that started the call ({ subject, id, headers }).
    this.event = h.event;
    this._log = undefined;
  }
  /**
   * The invocation's place in its trace, for the function's own spans: `traceparent` and
   * `tracestate` as W3C Trace Context headers (the worker's span of the invocation is the
   * parent), and the trace and parent span ids read from them. Undefined without a trace.
   */
  get trace() {
    const m = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(this.traceparent ?? '');
    if (!m) return undefined;
    return { traceparent: this.traceparent, tracestate: this.tracestate, traceId: m[1], parentSpanId: m[2], sampled: (parseInt(m[3], 16) & 1) === 1 };
  }
  /** Milliseconds left before the deadline, never negative. */
  remainingMs() {
    const left = this.deadline - Date.now();
    return left > 0 ? left : 0;
  }
  get log() {
    if (this._log === undefined) {
      const id = this.invocationId;
      this._log = {
        info: (msg, fields) => logLine('info', msg, id, fields),
        warn: (msg, fields) => logLine('warn', msg, id, fields),
        error: (msg, fields) => logLine('error', msg, id, fields),
      };
    }
    return this._log;
  }
}

function mediaType(ct) {
  const semi = ct.indexOf(';');
  return (semi < 0 ? ct : ct.slice(0, semi)).trim().toLowerCase();
}

function decodeEvent(ct, body) {
  if (ct === undefined) return body;
  const type = ct === 'application/json' ? ct : mediaType(ct);
  if (type === 'application/json' || type.endsWith('+json')) {
    return body.length === 0 ? undefined : JSON.parse(body.toString('utf8'));
  }
  if (type.startsWith('text/')) return body.toString('utf8');
  return body;
}

async function run(h, body) {
  const id = h.id;
  try {
    let event;
    try {
      event = decodeEvent(h.contentType, body);
    } catch (err) {
      send({ type: 'error', id, code: 'BAD_INPUT', message: `the request body is not valid JSON: ${err.message}` });
      return;
    }
    let value;
    try {
      value = await handler(event, new Context(h));
    } catch (err) {
      sendFnError(id, err);
      return;
    }
    reply(id, value);
  } finally {
    inflight--;
    if (draining && inflight === 0) exit();
  }
}

function reply(id, value) {
  let contentType;
  let out;
  if (value === undefined) {
    out = EMPTY;
  } else if (typeof value === 'string') {
    contentType = 'text/plain; charset=utf-8';
    out = Buffer.from(value, 'utf8');
  } else if (value instanceof Uint8Array) {
    contentType = 'application/octet-stream';
    out = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  } else {
    let json;
    try {
      json = JSON.stringify(value);
    } catch (err) {
      send({ type: 'error', id, code: 'BAD_OUTPUT', message: `the function's result cannot be turned into JSON: ${err.message}` });
      return;
    }
    if (json === undefined) {
      send({ type: 'error', id, code: 'BAD_OUTPUT', message: `the function returned a ${typeof value}, which has no JSON form` });
      return;
    }
    contentType = 'application/json';
    out = Buffer.from(json, 'utf8');
  }
  if (out.length > maxBody) {
    send({ type: 'error', id, code: 'OUTPUT_TOO_LARGE', message: `the function's result of ${out.length} bytes is over the limit of ${maxBody}` });
    return;
  }
  send(contentType === undefined ? { type: 'result', id } : { type: 'result', id, contentType }, out);
}

function sendFnError(id, err) {
  const isError = err instanceof Error;
  let message;
  try {
    message = isError ? String(err.message) : typeof err === 'string' ? err : `non-error thrown: ${JSON.stringify(err) ?? String(err)}`;
  } catch {
    message = 'non-error thrown';
  }
  const header = { type: 'error', id, code: 'FN_ERROR', message: clip(message, MAX_MESSAGE) };
  if (isError && typeof err.stack === 'string') header.stack = clip(err.stack, MAX_STACK);
  send(header);
}

function clip(s, max) {
  return s.length <= max ? s : s.slice(0, max - 1) + '…';
}

// ---- shutdown ----

function drain() {
  if (draining) return;
  draining = true;
  if (inflight === 0) return exit();
  // In-flight work gets until its deadline (and a little), then the runtime gives up on it.
  const wait = Math.max(0, latestDeadline - Date.now()) + 1000;
  setTimeout(() => fatal(1, `runtime: ${inflight} invocation(s) still running past their deadline at shutdown`), wait).unref();
}

let exiting = false;
function exit() {
  if (exiting) return;
  exiting = true;
  // Flush what is queued on fd 3, then go, whatever handles the function left open.
  if (sock.destroyed || !sock.writable) process.exit(0);
  sock.end(() => process.exit(0));
}

// ---- start ----

const sock = new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
sock.on('error', (err) => {
  // The worker went away (or we are already leaving): nothing left to answer to.
  if (exiting || err.code === 'EPIPE' || err.code === 'ECONNRESET') process.exit(0);
  fatal(1, `runtime: fd ${fd} failed: ${err.message}`, err);
});
sock.pause();
process.on('SIGTERM', drain);
process.on('SIGINT', drain);
sock.on('data', onData);
// The worker closed its end: take no more work, finish what is running, exit.
sock.on('end', drain);

/** Loads the function named by SKIFF_HANDLER and says `ready`. */
async function start() {
  const path = process.env.SKIFF_HANDLER;
  if (!path) fatal(1, 'runtime: SKIFF_HANDLER is not set (the path of the function module)');
  let mod;
  try {
    mod = await import(pathToFileURL(path).href);
  } catch (err) {
    fatal(1, `runtime: cannot load the function module ${path}`, err);
  }
  handler = mod.default;
  if (typeof handler !== 'function') fatal(1, `runtime: ${path} has no default export function (export default async (event, context) => result)`);
  sock.resume();
  send({ type: 'ready', protocol: PROTOCOL, runtime: 'node', runtimeVersion: process.versions.node });
}

if (stem) {
  await prime();
  waitingForLoad = true;
  sock.resume();
  send({ type: 'stem', protocol: PROTOCOL, runtime: 'node', runtimeVersion: process.versions.node });
} else {
  configure(process.env);
  await start();
}
