/**
 * The Node.js stream runtime (functions/runtimes/node/runtime.mjs) as a real process on the
 * host, spoken to over its fd 3 by the worker's own StreamConnection.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { InvocationError, StreamConnection, type InvokeReply } from '../../services/worker/src/stream/connection.js';

const RUNTIME = fileURLToPath(new URL('../../functions/runtimes/node/runtime.mjs', import.meta.url));
const HANDLER = fileURLToPath(new URL('./fixtures/handler.mjs', import.meta.url));
const STEM_HANDLER = fileURLToPath(new URL('./fixtures/stem-handler.mjs', import.meta.url));

interface Instance {
  child: ChildProcess;
  conn: StreamConnection;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once check() holds for what the process has written; rejects if its output ends first. */
  output: (check: () => boolean, what: string) => Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: Instance[] = [];

function start(env: Record<string, string> = {}, stem = false): Instance {
  const child = spawn(process.execPath, [RUNTIME], {
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    env: stem ? { PATH: process.env.PATH ?? '', SKIFF_STEM: '1', STEM_ONLY: 'x', ...env } : { PATH: process.env.PATH ?? '', SKIFF_HANDLER: HANDLER, SKIFF_FUNCTION: 'tester', SKIFF_FUNCTION_VERSION: '7', ...env },
  });
  let out = '';
  let err = '';
  const watchers = new Set<() => void>();
  const wrote = () => watchers.forEach((w) => w());
  child.stdout!.on('data', (c: Buffer) => ((out += c.toString()), wrote()));
  child.stderr!.on('data', (c: Buffer) => ((err += c.toString()), wrote()));
  const output = (check: () => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const w = () => check() && watchers.delete(w) && resolve();
      watchers.add(w);
      w();
      child.once('close', () => watchers.delete(w) && reject(new Error(`the runtime's output ended before ${what}`)));
    });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  const conn = new StreamConnection(child.stdio[3] as Socket, { stem });
  const inst = { child, conn, stdout: () => out, stderr: () => err, output, exited };
  started.push(inst);
  return inst;
}

afterEach(() => {
  for (const i of started.splice(0)) {
    i.conn.close();
    if (i.child.exitCode === null && i.child.signalCode === null) i.child.kill('SIGKILL');
  }
});

let seq = 0;
const json = (conn: StreamConnection, event: unknown, extra: { deadline?: number; traceparent?: string; tracestate?: string; callId?: string } = {}) =>
  conn.invoke({ id: `i${++seq}`, deadline: Date.now() + 10_000, contentType: 'application/json', ...extra }, Buffer.from(JSON.stringify(event)));
const parse = (r: InvokeReply) => JSON.parse(r.body.toString());

describe('node runtime', () => {
  it('says ready with the protocol version and its name', async () => {
    const { conn } = start();
    await expect(conn.ready).resolves.toEqual({ runtime: 'node', version: 1, runtimeVersion: process.versions.node });
  });

  it('passes JSON, text and bytes in and gets JSON, text and bytes out', async () => {
    const { conn } = start();
    await conn.ready;
    const obj = await json(conn, { op: 'echo', value: { a: [1, 'two', null] } });
    expect(obj.contentType).toBe('application/json');
    expect(parse(obj)).toEqual({ a: [1, 'two', null] });

    const nul = await json(conn, { op: 'echo', value: null });
    expect([nul.contentType, nul.body.toString()]).toEqual(['application/json', 'null']);

    const text = await conn.invoke({ id: 'text', deadline: Date.now() + 5000, contentType: 'text/plain; charset=utf-8' }, Buffer.from('héllo'));
    expect(text.contentType).toBe('text/plain; charset=utf-8');
    expect(text.body.toString()).toBe('HÉLLO');

    const bin = await conn.invoke({ id: 'bin', deadline: Date.now() + 5000 }, Buffer.from([1, 2, 3, 250]));
    expect(bin.contentType).toBe('application/octet-stream');
    expect([...bin.body]).toEqual([250, 3, 2, 1]);

    const u8 = await json(conn, { op: 'bytes' });
    expect([u8.contentType, [...u8.body]]).toEqual(['application/octet-stream', [1, 2, 3]]);

    const vnd = await conn.invoke({ id: 'vnd', deadline: Date.now() + 5000, contentType: 'application/vnd.skiff+json' }, Buffer.from('{"op":"echo","value":5}'));
    expect(parse(vnd)).toBe(5);

    const none = await conn.invoke({ id: 'none', deadline: Date.now() + 5000, contentType: 'application/json' }, Buffer.alloc(0));
    expect(none).toEqual({ contentType: undefined, body: Buffer.alloc(0) });

    const big = Buffer.alloc(3 * 1024 * 1024, 0x61);
    const back = await conn.invoke({ id: 'big', deadline: Date.now() + 5000 }, big);
    expect(back.body.length).toBe(big.length);
  });

  it('gives the function its context', async () => {
    const { conn } = start();
    await conn.ready;
    const deadline = Date.now() + 4000;
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const r = parse(await json(conn, { op: 'context' }, { deadline, traceparent: tp, tracestate: 'k=v', callId: 'call-abc' }));
    expect(r).toEqual({ invocationId: 'call-abc', functionName: 'tester', functionVersion: 7, deadline, traceparent: tp, tracestate: 'k=v' });
    const bare = parse(await conn.invoke({ id: 'just-id', deadline, contentType: 'application/json' }, Buffer.from('{"op":"context"}')));
    expect(bare).toMatchObject({ invocationId: 'just-id', traceparent: null });
  });

  it('runs invocations concurrently', async () => {
    const { conn } = start();
    await conn.ready;
    // Each answers only once all three are running at the same time: a runtime that ran them
    // one after another would answer none (they would reach their deadline instead).
    const met = await Promise.all([1, 2, 3].map(() => json(conn, { op: 'meet', n: 3 })));
    expect(met.map(parse)).toEqual([{ met: 3 }, { met: 3 }, { met: 3 }]);
  });

  it('answers out of order when a later invocation finishes first', async () => {
    const { conn } = start();
    await conn.ready;
    const order: string[] = [];
    // the first is held until the second has answered
    await Promise.all([
      json(conn, { op: 'hold', key: 'first' }).then((r) => order.push(parse(r).held)),
      json(conn, { op: 'release', key: 'first' }).then((r) => order.push(`released ${parse(r).released}`)),
    ]);
    expect(order).toEqual(['released first', 'first']);
  });

  it('turns a thrown error into an error reply and keeps serving', async () => {
    const { conn, child } = start();
    await conn.ready;
    const err = await json(conn, { op: 'throw', message: 'bad things' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvocationError);
    expect(err).toMatchObject({ code: 'FN_ERROR', message: 'bad things' });
    expect((err as InvocationError).remoteStack).toMatch(/^TypeError: bad things\n\s+at handler/);
    await expect(json(conn, { op: 'throw-string', message: 'just a string' })).rejects.toMatchObject({ code: 'FN_ERROR', message: 'just a string', remoteStack: undefined });
    expect((await json(conn, { op: 'echo', value: 'still here' })).body.toString()).toBe('still here');
    expect(conn.isOpen).toBe(true);
    expect([child.exitCode, child.signalCode]).toEqual([null, null]);
  });

  it('answers BAD_INPUT for a body that is not JSON, BAD_OUTPUT for a result that cannot be', async () => {
    const { conn } = start();
    await conn.ready;
    await expect(conn.invoke({ id: 'bad', deadline: Date.now() + 5000, contentType: 'application/json' }, Buffer.from('{"op": nope'))).rejects.toMatchObject({
      name: 'InvocationError',
      code: 'BAD_INPUT',
      message: expect.stringMatching(/not valid JSON/),
    });
    await expect(json(conn, { op: 'bigint' })).rejects.toMatchObject({ code: 'BAD_OUTPUT' });
    expect(parse(await json(conn, { op: 'echo', value: 1 }))).toBe(1);
  });

  it('refuses a result over SKIFF_MAX_BODY_BYTES with OUTPUT_TOO_LARGE', async () => {
    const { conn } = start({ SKIFF_MAX_BODY_BYTES: '1000' });
    await conn.ready;
    await expect(json(conn, { op: 'big', size: 1001 })).rejects.toMatchObject({ code: 'OUTPUT_TOO_LARGE' });
    expect((await json(conn, { op: 'big', size: 900 })).body.length).toBe(900);
  });

  it('counts remainingMs down towards the deadline', async () => {
    const { conn } = start();
    await conn.ready;
    const deadline = Date.now() + 60_000;
    const r = parse(await json(conn, { op: 'remaining', ms: 20 }, { deadline }));
    expect(r.deadline).toBe(deadline);
    // deadline - now, read between the clock readings the fixture took around each call:
    // exact however slow the machine is
    const [t0, t1, t2, t3] = r.clock;
    expect(r.before).toBeGreaterThanOrEqual(deadline - t1);
    expect(r.before).toBeLessThanOrEqual(deadline - t0);
    expect(r.after).toBeGreaterThanOrEqual(deadline - t3);
    expect(r.after).toBeLessThanOrEqual(deadline - t2);
    expect(r.after).toBeLessThan(r.before);
    // Past the deadline the worker stops waiting; the instance keeps serving.
    await expect(json(conn, { op: 'hold', key: 'late' }, { deadline: Date.now() + 50 })).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(conn.overdue).toBe(1);
    expect(parse(await json(conn, { op: 'release', key: 'late' }))).toEqual({ released: 'late', wasHeld: true });
    // The late reply leaves right after the release's, so it is in before the next reply.
    expect(parse(await json(conn, { op: 'echo', value: 2 }))).toBe(2);
    expect(conn.overdue).toBe(0); // it arrived and was dropped
  });

  it('writes context.log lines to stderr with the invocation id and leaves stdout to the function', async () => {
    const { conn, stdout, stderr, output } = start();
    await conn.ready;
    const r = await json(conn, { op: 'log' }, { callId: 'call-log-1' });
    expect(r.body.toString()).toBe('logged');
    // stdout and stderr are pipes of their own: their lines may come after the reply on fd 3
    await output(() => stdout().endsWith('\n') && stderr().split('\n').length > 2, 'the log lines');
    expect(stdout()).toBe('plain stdout line\n');
    const lines = stderr().trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([
      expect.objectContaining({ level: 'info', msg: 'hello from the function', invocationId: 'call-log-1', fn: 'tester', answer: 42 }),
      expect.objectContaining({ level: 'error', msg: 'something odd', invocationId: 'call-log-1' }),
    ]);
  });

  it('on shutdown finishes in-flight work, refuses new work and exits 0', async () => {
    const { conn, exited } = start();
    await conn.ready;
    // Sent in one turn of the event loop, these three frames leave in one write (the connection
    // corks them), so the runtime reads the shutdown before the release lets the hold go.
    const slow = json(conn, { op: 'hold', key: 'slow' });
    const release = json(conn, { op: 'release', key: 'slow' });
    const closed = conn.shutdown();
    await expect(json(conn, { op: 'echo', value: 1 })).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    expect(parse(await release)).toEqual({ released: 'slow', wasHeld: true });
    expect(parse(await slow)).toEqual({ held: 'slow' });
    expect(await closed).toEqual({ error: undefined });
    expect(await exited).toEqual({ code: 0, signal: null });
  });

  it('on SIGTERM finishes in-flight work and exits 0', async () => {
    const { conn, child, exited, stderr, output } = start();
    await conn.ready;
    const slow = json(conn, { op: 'hold', key: 'slow' });
    await output(() => stderr().includes('"msg":"holding"'), 'the hold to start');
    child.kill('SIGTERM');
    await output(() => stderr().includes('fixture got SIGTERM'), 'SIGTERM to arrive');
    // the runtime itself refuses new work now (the worker's side does not know of the signal)
    await expect(json(conn, { op: 'echo', value: 1 })).rejects.toMatchObject({ name: 'InvocationError', code: 'SHUTTING_DOWN' });
    child.kill('SIGUSR2'); // the fixture lets its held invocations go
    expect(parse(await slow)).toEqual({ held: 'slow' });
    expect(await exited).toEqual({ code: 0, signal: null });
  });

  it('exits 0 when the worker closes the connection', async () => {
    const { conn, exited } = start();
    await conn.ready;
    conn.close();
    expect(await exited).toEqual({ code: 0, signal: null });
  });

  it('a crash ends the connection and every pending invocation rejects', async () => {
    const { conn, exited } = start();
    await conn.ready;
    const slow = json(conn, { op: 'hold', key: 'never' });
    const crash = json(conn, { op: 'exit', code: 3, after: 20 });
    await expect(crash).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    await expect(slow).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect((await conn.closed).error).toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect(await exited).toEqual({ code: 3, signal: null });
  });

  it('an error escaping an invocation is logged and the process exits non-zero', async () => {
    const { conn, exited, stderr } = start();
    await conn.ready;
    expect((await json(conn, { op: 'escape' })).body.toString()).toBe('ok');
    expect((await exited).code).toBe(1);
    expect(stderr()).toMatch(/"level":"fatal","time":\d+,"msg":"uncaught exception".*escaped the invocation/);
    await expect(conn.closed).resolves.toMatchObject({ error: { code: 'CONNECTION_CLOSED' } });
  });

  it('a module that cannot be loaded exits 1 before ready, saying why', async () => {
    const missing = start({ SKIFF_HANDLER: '/nonexistent/index.mjs' });
    await expect(missing.conn.ready).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect((await missing.exited).code).toBe(1);
    expect(missing.stderr()).toMatch(/cannot load the function module \/nonexistent\/index\.mjs/);

    const wrong = start({ SKIFF_HANDLER: fileURLToPath(new URL('./fixtures/not-a-function.mjs', import.meta.url)) });
    await expect(wrong.conn.ready).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect((await wrong.exited).code).toBe(1);
    expect(wrong.stderr()).toMatch(/has no default export function/);
  });

  it('exits 2 when the worker breaks the protocol', async () => {
    const { conn, child, exited, stderr } = start();
    await conn.ready;
    (child.stdio[3] as Socket).write(Buffer.from('this is no frame at all'));
    expect((await exited).code).toBe(2);
    expect(stderr()).toMatch(/broke the protocol: not a frame/);
  });
});

describe('node runtime as a stem cell (SKIFF_STEM=1)', () => {
  const loadEnv = ['PATH=/usr/bin:/bin', `SKIFF_HANDLER=${STEM_HANDLER}`, 'SKIFF_FUNCTION=adopter', 'SKIFF_FUNCTION_VERSION=3', 'FUNCTION_SECRET=s3cr3t'];

  it('says stem, then takes exactly the environment and working directory of load before it loads the function', async () => {
    const { conn } = start({}, true);
    await expect(conn.waiting).resolves.toEqual({ runtime: 'node', version: 1, runtimeVersion: process.versions.node });
    const cwd = fileURLToPath(new URL('./fixtures', import.meta.url));
    conn.load(loadEnv, cwd);
    await conn.ready;
    const seen = parse(await json(conn, {}));
    // Its module ran after the environment was the function's: it saw the secret, in its cwd.
    expect(seen.atLoad).toEqual({ secret: 's3cr3t', cwd });
    // Nothing of the stem cell's environment stays (SKIFF_STEM, STEM_ONLY).
    expect(seen.env).toEqual(Object.fromEntries(loadEnv.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])));
    expect([seen.functionName, seen.functionVersion]).toEqual(['adopter', 3]);
  });

  it('exits 0 when the worker closes the connection or shuts it down before load', async () => {
    const a = start({}, true);
    await a.conn.waiting;
    a.conn.close();
    expect((await a.exited).code).toBe(0);
    const b = start({}, true);
    await b.conn.waiting;
    void b.conn.shutdown();
    expect((await b.exited).code).toBe(0);
  });

  it('exits 2 on an invocation before load, and 1 when the loaded function cannot be', async () => {
    const early = start({}, true);
    await early.conn.waiting;
    const { encodeFrame } = await import('../../services/worker/src/stream/frames.js');
    for (const b of encodeFrame({ type: 'invoke', id: 'x', deadline: Date.now() + 5000 })) (early.child.stdio[3] as Socket).write(b);
    expect((await early.exited).code).toBe(2);
    expect(early.stderr()).toMatch(/broke the protocol: \\"invoke\\" before load/);

    const missing = start({}, true);
    await missing.conn.waiting;
    missing.conn.load(['SKIFF_HANDLER=/nonexistent/index.mjs'], '/');
    await expect(missing.conn.ready).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect((await missing.exited).code).toBe(1);
    expect(missing.stderr()).toMatch(/cannot load the function module \/nonexistent\/index\.mjs/);
  });
});
