import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvocationError, StreamConnection, StreamError } from './connection.js';
import { FrameDecoder, encodeFrame, type Frame } from './frames.js';
import { workerMessage, type WorkerMessage } from './messages.js';

/** The runtime's end of a real Unix socket, driven by the test. */
class FakeRuntime {
  readonly received: Frame<WorkerMessage>[] = [];
  private readonly decoder = new FrameDecoder(workerMessage);
  private waiters: (() => void)[] = [];
  constructor(readonly sock: net.Socket) {
    sock.on('data', (c: Buffer) => {
      this.received.push(...this.decoder.push(c));
      for (const w of this.waiters.splice(0)) w();
    });
    sock.on('error', () => {});
  }
  send(header: object, body?: Uint8Array): void {
    for (const b of encodeFrame(header, body)) this.sock.write(b);
  }
  ready(): void {
    this.send({ type: 'ready', protocol: 1, runtime: 'fake', runtimeVersion: '0' });
  }
  async frames(n: number): Promise<Frame<WorkerMessage>[]> {
    while (this.received.length < n) await new Promise<void>((r) => this.waiters.push(r));
    return this.received.slice(0, n);
  }
}

let dir: string;
let server: net.Server;
let conn: StreamConnection;
let runtime: FakeRuntime;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'skiff-stream-'));
  const path = join(dir, 'rt.sock');
  server = net.createServer();
  await new Promise<void>((r) => server.listen(path, r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect(path);
  conn = new StreamConnection(client, { maxBodyBytes: 1024 * 1024 });
  runtime = new FakeRuntime(await accepted);
});

afterEach(async () => {
  conn.close();
  runtime.sock.destroy();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const soon = () => Date.now() + 10_000;

describe('StreamConnection', () => {
  it('resolves ready with what the runtime announced', async () => {
    runtime.ready();
    await expect(conn.ready).resolves.toEqual({ runtime: 'fake', version: 1, runtimeVersion: '0' });
  });

  it('sends the invocation header and body and resolves with the reply', async () => {
    runtime.ready();
    const deadline = soon();
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const reply = conn.invoke({ id: 'i1', deadline, callId: 'call-1', traceparent: tp, contentType: 'application/json' }, Buffer.from('{"a":1}'));
    const [f] = await runtime.frames(1);
    expect(f!.header).toEqual({ type: 'invoke', id: 'i1', deadline, callId: 'call-1', traceparent: tp, contentType: 'application/json' });
    expect(f!.body.toString()).toBe('{"a":1}');
    expect(conn.inflight).toBe(1);
    runtime.send({ type: 'result', id: 'i1', contentType: 'text/plain' }, Buffer.from('done'));
    const r = await reply;
    expect(r.contentType).toBe('text/plain');
    expect(r.body.toString()).toBe('done');
    expect(conn.inflight).toBe(0);
  });

  it('holds invocations made before ready until the runtime is ready', async () => {
    const reply = conn.invoke({ id: 'early', deadline: soon() }, Buffer.from('x'));
    await new Promise((r) => setTimeout(r, 30));
    expect(runtime.received).toHaveLength(0);
    runtime.ready();
    const [f] = await runtime.frames(1);
    expect(f!.header).toMatchObject({ type: 'invoke', id: 'early' });
    runtime.send({ type: 'result', id: 'early' });
    await expect(reply).resolves.toMatchObject({ contentType: undefined });
  });

  it('matches out-of-order replies by id, large bodies included', async () => {
    runtime.ready();
    const big = Buffer.alloc(300_000, 3);
    const ids = ['a', 'b', 'c', 'd'];
    const replies = ids.map((id) => conn.invoke({ id, deadline: soon() }, id === 'b' ? big : Buffer.from(id)));
    const got = await runtime.frames(4);
    expect(got.map((f) => f.header.type === 'invoke' && f.header.id)).toEqual(ids);
    expect(got[1]!.body.equals(big)).toBe(true);
    runtime.send({ type: 'result', id: 'c' }, Buffer.from('C'));
    runtime.send({ type: 'error', id: 'a', code: 'FN_ERROR', message: 'a failed', stack: 'Error: a failed\n    at fn' });
    runtime.send({ type: 'result', id: 'b' }, big);
    runtime.send({ type: 'result', id: 'd' }, Buffer.from('D'));
    const [a, b, c, d] = await Promise.allSettled(replies);
    expect(a).toMatchObject({ status: 'rejected', reason: { name: 'InvocationError', id: 'a', code: 'FN_ERROR', message: 'a failed' } });
    expect((a as PromiseRejectedResult).reason).toBeInstanceOf(InvocationError);
    expect(((a as PromiseRejectedResult).reason as InvocationError).remoteStack).toContain('at fn');
    expect((b as PromiseFulfilledResult<{ body: Buffer }>).value.body.equals(big)).toBe(true);
    expect((c as PromiseFulfilledResult<{ body: Buffer }>).value.body.toString()).toBe('C');
    expect((d as PromiseFulfilledResult<{ body: Buffer }>).value.body.toString()).toBe('D');
  });

  it('refuses a duplicate id, a passed deadline and an oversized body without sending', async () => {
    runtime.ready();
    await conn.ready;
    const first = conn.invoke({ id: 'same', deadline: soon() }, Buffer.alloc(0));
    await expect(conn.invoke({ id: 'same', deadline: soon() }, Buffer.alloc(0))).rejects.toMatchObject({ code: 'DUPLICATE_ID' });
    await expect(conn.invoke({ id: 'late', deadline: Date.now() - 1 }, Buffer.alloc(0))).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    await expect(conn.invoke({ id: 'big', deadline: soon() }, Buffer.alloc(1024 * 1024 + 1))).rejects.toMatchObject({ code: 'BODY_TOO_LARGE' });
    await runtime.frames(1);
    runtime.send({ type: 'result', id: 'same' });
    await first;
    await new Promise((r) => setTimeout(r, 20));
    expect(runtime.received).toHaveLength(1);
  });

  it('rejects at the deadline, drops the late reply and keeps serving', async () => {
    runtime.ready();
    const slow = conn.invoke({ id: 'slow', deadline: Date.now() + 50 }, Buffer.alloc(0));
    await expect(slow).rejects.toMatchObject({ name: 'StreamError', code: 'DEADLINE_EXCEEDED' });
    expect(conn.overdue).toBe(1);
    expect(conn.inflight).toBe(1);
    runtime.send({ type: 'result', id: 'slow' }, Buffer.from('too late'));
    const next = conn.invoke({ id: 'next', deadline: soon() }, Buffer.alloc(0));
    await runtime.frames(2);
    runtime.send({ type: 'result', id: 'next' }, Buffer.from('ok'));
    expect((await next).body.toString()).toBe('ok');
    expect(conn.overdue).toBe(0);
    expect(conn.isOpen).toBe(true);
  });

  it('ends the connection on a malformed frame and rejects what is pending', async () => {
    runtime.ready();
    const pending = conn.invoke({ id: 'p', deadline: soon() }, Buffer.alloc(0));
    await runtime.frames(1);
    runtime.sock.write(Buffer.from('definitely not a frame'));
    await expect(pending).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    const { error } = await conn.closed;
    expect(error).toMatchObject({ name: 'FrameError', code: 'BAD_MAGIC' });
    expect(conn.isOpen).toBe(false);
    await expect(conn.invoke({ id: 'q', deadline: soon() }, Buffer.alloc(0))).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
  });

  it('ends the connection on a body over the limit', async () => {
    runtime.ready();
    const pending = conn.invoke({ id: 'p', deadline: soon() }, Buffer.alloc(0));
    await runtime.frames(1);
    runtime.send({ type: 'result', id: 'p' }, Buffer.alloc(1024 * 1024 + 1));
    await expect(pending).rejects.toMatchObject({ code: 'CONNECTION_CLOSED', cause: { code: 'BODY_TOO_LARGE' } });
  });

  it('treats replies to unknown ids, replies before ready and a second ready as protocol errors', async () => {
    runtime.send({ type: 'result', id: 'nobody' });
    await expect(conn.ready).rejects.toMatchObject({ code: 'CONNECTION_CLOSED', cause: { code: 'PROTOCOL' } });
    expect((await conn.closed).error?.message).toMatch(/result before ready/);
  });

  it('treats a reply to an id never sent as a protocol error', async () => {
    runtime.ready();
    await conn.ready;
    runtime.send({ type: 'error', id: 'ghost', code: 'FN_ERROR', message: 'boo' });
    expect((await conn.closed).error?.message).toMatch(/unknown invocation "ghost"/);
  });

  it('treats a second ready as a protocol error', async () => {
    runtime.ready();
    runtime.ready();
    expect((await conn.closed).error?.message).toMatch(/second ready/);
  });

  it('refuses a runtime that speaks another protocol version', async () => {
    runtime.send({ type: 'ready', protocol: 2, runtime: 'future' });
    expect((await conn.closed).error).toMatchObject({ code: 'PROTOCOL' });
  });

  it('rejects pending invocations when the runtime goes away', async () => {
    runtime.ready();
    const a = conn.invoke({ id: 'a', deadline: soon() }, Buffer.alloc(0));
    const b = conn.invoke({ id: 'b', deadline: soon() }, Buffer.alloc(0));
    await runtime.frames(2);
    runtime.sock.end();
    await expect(a).rejects.toBeInstanceOf(StreamError);
    await expect(b).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect((await conn.closed).error).toMatchObject({ code: 'CONNECTION_CLOSED' });
  });

  it('rejects ready when the runtime goes away before it', async () => {
    runtime.sock.destroy();
    await expect(conn.ready).rejects.toMatchObject({ code: 'CONNECTION_CLOSED', message: /before it was ready/ });
  });

  it('shutdown sends shutdown, refuses new work, lets in-flight finish and ends cleanly', async () => {
    runtime.ready();
    const inflight = conn.invoke({ id: 'w', deadline: soon() }, Buffer.alloc(0));
    const done = conn.shutdown();
    await expect(conn.invoke({ id: 'x', deadline: soon() }, Buffer.alloc(0))).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    const frames = await runtime.frames(2);
    expect(frames.map((f) => f.header.type)).toEqual(['invoke', 'shutdown']);
    runtime.send({ type: 'result', id: 'w' }, Buffer.from('finished'));
    runtime.sock.end();
    expect((await inflight).body.toString()).toBe('finished');
    expect(await done).toEqual({ error: undefined });
  });

  it('close() rejects what is pending and resolves closed without an error', async () => {
    runtime.ready();
    const p = conn.invoke({ id: 'p', deadline: soon() }, Buffer.alloc(0));
    await runtime.frames(1);
    conn.close();
    await expect(p).rejects.toMatchObject({ code: 'CONNECTION_CLOSED', message: /worker closed/ });
    expect(await conn.closed).toEqual({ error: undefined });
  });
});

describe('StreamConnection to a stem cell', () => {
  let stemConn: StreamConnection;
  let stem: FakeRuntime;
  beforeEach(async () => {
    const path = join(dir, 'stem.sock');
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(path, r));
    const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
    stemConn = new StreamConnection(net.connect(path), { stem: true });
    stem = new FakeRuntime(await accepted);
    srv.close();
  });
  afterEach(() => {
    stemConn.close();
    stem.sock.destroy();
  });
  const announce = () => stem.send({ type: 'stem', protocol: 1, runtime: 'fake', runtimeVersion: '0' });

  it('waits for stem, sends load once, then is ready as any connection', async () => {
    announce();
    await expect(stemConn.waiting).resolves.toEqual({ runtime: 'fake', version: 1, runtimeVersion: '0' });
    const reply = stemConn.invoke({ id: 'i1', deadline: soon() }, Buffer.from('x'));
    stemConn.load(['A=1', 'SKIFF_HANDLER=/function/index.mjs'], '/function');
    expect(() => stemConn.load(['A=2'], '/')).toThrow(/once/);
    const [load] = await stem.frames(1);
    expect(load!.header).toEqual({ type: 'load', env: ['A=1', 'SKIFF_HANDLER=/function/index.mjs'], cwd: '/function' });
    stem.ready();
    // The invocation sent before ready goes out after it, after the load.
    const [, inv] = await stem.frames(2);
    expect(inv!.header).toMatchObject({ type: 'invoke', id: 'i1' });
    stem.send({ type: 'result', id: 'i1' });
    await expect(reply).resolves.toMatchObject({ contentType: undefined });
  });

  it('treats ready before load, or stem on an ordinary connection, as a broken protocol', async () => {
    stem.ready();
    await expect(stemConn.ready).rejects.toMatchObject({ code: 'CONNECTION_CLOSED', cause: { code: 'PROTOCOL', message: expect.stringMatching(/ready from a stem cell before load/) } });
    runtime.send({ type: 'stem', protocol: 1, runtime: 'fake' });
    await expect(conn.ready).rejects.toMatchObject({ cause: { code: 'PROTOCOL', message: expect.stringMatching(/no waiting stem cell/) } });
  });

  it('sends shutdown to a stem cell that waits', async () => {
    announce();
    await stemConn.waiting;
    void stemConn.shutdown();
    const [f] = await stem.frames(1);
    expect(f!.header).toEqual({ type: 'shutdown' });
  });
});
