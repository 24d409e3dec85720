/**
 * The worker's end of one `stream` connection (docs/runtime-protocol.md): waits for the
 * runtime's `ready`, sends invocations, matches replies to them by id (in any order), and
 * rejects whatever is pending when the connection ends. One StreamConnection per instance;
 * the pool above it decides how many invocations to have in flight at once.
 */
import type { TriggerEvent } from '@skiff/contracts';
import type { Duplex } from 'node:stream';
import { FrameDecoder, FrameError, encodeFrame } from './frames.js';
import { DEFAULT_MAX_BODY_BYTES, STREAM_PROTOCOL_VERSION, runtimeMessage, type RuntimeMessage } from './messages.js';

export interface InvokeRequest {
  /** Unique among this connection's invocations in flight (including overdue ones). */
  id: string;
  /** Absolute deadline, ms since the epoch: the reply must arrive before it. */
  deadline: number;
  /** The platform's call id, for the function's logs; the runtime uses `id` when absent. */
  callId?: string | undefined;
  traceparent?: string | undefined;
  tracestate?: string | undefined;
  /** Media type of `body`; absent means raw bytes. */
  contentType?: string | undefined;
  attempt?: number | undefined;
  idempotencyKey?: string | undefined;
  event?: TriggerEvent | undefined;
}

export interface InvokeReply {
  /** Absent when the function returned nothing (the body is then empty). */
  contentType: string | undefined;
  /** A view into the bytes read from the socket. */
  body: Buffer;
}

export interface ReadyInfo {
  runtime: string;
  /** Protocol version the runtime speaks. */
  version: number;
  runtimeVersion: string | undefined;
}

export interface CloseInfo {
  /** Why the connection ended; undefined for a clean end (close(), or EOF after shutdown with nothing pending). */
  error: Error | undefined;
}

export interface StreamConnectionOptions {
  /** Largest body sent or received (default 16 MiB); tell the runtime the same in SKIFF_MAX_BODY_BYTES. */
  maxBodyBytes?: number;
  /**
   * The runtime is a stem cell: it says `stem` first and loads a function only on `load()`,
   * then says `ready` (docs/runtime-protocol.md, "Stem cells").
   */
  stem?: boolean;
}

export type StreamErrorCode =
  | 'CONNECTION_CLOSED' // the connection ended (runtime exited, broke the protocol, or close() was called)
  | 'DEADLINE_EXCEEDED' // no reply before the invocation's deadline
  | 'DUPLICATE_ID' // the id is already in flight on this connection
  | 'SHUTTING_DOWN' // shutdown() was called; no new invocations
  | 'BODY_TOO_LARGE' // the request body is over maxBodyBytes
  | 'PROTOCOL'; // the runtime sent something out of order, or an unsupported version

/** A failure on the worker's side of the connection. */
export class StreamError extends Error {
  override readonly name = 'StreamError';
  constructor(
    readonly code: StreamErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The runtime's `error` reply to one invocation (the function threw, bad input, …). */
export class InvocationError extends Error {
  override readonly name = 'InvocationError';
  constructor(
    readonly id: string,
    /** The runtime's code: FN_ERROR, BAD_INPUT, BAD_OUTPUT, OUTPUT_TOO_LARGE, SHUTTING_DOWN, … */
    readonly code: string,
    message: string,
    /** The stack trace inside the function, when the runtime sent one. */
    readonly remoteStack: string | undefined,
  ) {
    super(message);
  }
}

interface Pending {
  resolve: (reply: InvokeReply) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/** setTimeout's ceiling (~24.8 days); later deadlines are checked again when it fires. */
const MAX_TIMER_MS = 0x7fff_ffff;

export class StreamConnection {
  /** Resolves with the runtime's `ready`; rejects if the connection ends first. */
  readonly ready: Promise<ReadyInfo>;
  /** A stem cell's: resolves with its `stem` (it waits for `load()`); rejects if the connection ends first. */
  readonly waiting: Promise<ReadyInfo>;
  /** Resolves (never rejects) once the connection has ended, for whatever reason. */
  readonly closed: Promise<CloseInfo>;

  private readyInfo: ReadyInfo | undefined;
  /** Set by a stem cell's `stem`; `loaded` once load() sent the function. */
  private stemInfo: ReadyInfo | undefined;
  private loaded = false;
  private readonly stem: boolean;
  private resolveWaiting!: (info: ReadyInfo) => void;
  private rejectWaiting!: (err: Error) => void;
  private resolveReady!: (info: ReadyInfo) => void;
  private rejectReady!: (err: Error) => void;
  private resolveClosed!: (info: CloseInfo) => void;
  private readonly pending = new Map<string, Pending>();
  /** Ids whose deadline passed while the runtime still works on them: their late replies are dropped. */
  private readonly overdueIds = new Set<string>();
  private readonly decoder: FrameDecoder<RuntimeMessage>;
  private readonly maxBody: number;
  private draining = false;
  private corked = false;
  private ended: CloseInfo | undefined;

  constructor(
    private readonly socket: Duplex,
    options: StreamConnectionOptions = {},
  ) {
    this.maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.stem = options.stem ?? false;
    this.waiting = new Promise<ReadyInfo>((resolve, reject) => {
      this.resolveWaiting = resolve;
      this.rejectWaiting = reject;
    });
    this.waiting.catch(() => {});
    this.decoder = new FrameDecoder(runtimeMessage, { maxBodyBytes: this.maxBody });
    this.ready = new Promise<ReadyInfo>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {}); // a connection nobody awaits must not crash the worker
    this.closed = new Promise<CloseInfo>((resolve) => (this.resolveClosed = resolve));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.end(this.eofError()));
    socket.on('error', (err) => this.end(new StreamError('CONNECTION_CLOSED', `connection to the runtime failed: ${err.message}`, { cause: err })));
    socket.on('close', () => this.end(this.eofError()));
  }

  /** Invocations sent and not yet answered, including overdue ones the runtime is still running. */
  get inflight(): number {
    return this.pending.size + this.overdueIds.size;
  }

  /** Invocations whose deadline passed without a reply: the runtime may still be busy with them. */
  get overdue(): number {
    return this.overdueIds.size;
  }

  /** True until the connection ends. */
  get isOpen(): boolean {
    return this.ended === undefined;
  }

  /**
   * Sends one invocation and resolves with the function's result. Rejects with InvocationError
   * when the runtime answers with an error, with StreamError otherwise. Invocations sent before
   * `ready` wait for it.
   */
  invoke(req: InvokeRequest, body: Uint8Array): Promise<InvokeReply> {
    if (this.ended) return Promise.reject(new StreamError('CONNECTION_CLOSED', 'the connection to the runtime has ended', { cause: this.ended.error }));
    if (this.draining) return Promise.reject(new StreamError('SHUTTING_DOWN', 'the runtime is shutting down'));
    const { id } = req;
    if (this.pending.has(id) || this.overdueIds.has(id)) return Promise.reject(new StreamError('DUPLICATE_ID', `invocation id "${id}" is already in flight`));
    if (body.byteLength > this.maxBody) return Promise.reject(new StreamError('BODY_TOO_LARGE', `request body of ${body.byteLength} bytes is over the limit of ${this.maxBody}`));
    const left = req.deadline - Date.now();
    if (!(left > 0)) return Promise.reject(new StreamError('DEADLINE_EXCEEDED', `invocation ${id} reached its deadline before it was sent`));
    let frame: Buffer[];
    try {
      frame = encodeFrame(
        { type: 'invoke', id, deadline: req.deadline, callId: req.callId, traceparent: req.traceparent, tracestate: req.tracestate, contentType: req.contentType, attempt: req.attempt, idempotencyKey: req.idempotencyKey, event: req.event },
        body,
        this.maxBody,
      );
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<InvokeReply>((resolve, reject) => {
      const p: Pending = { resolve, reject, timer: undefined };
      p.timer = setTimeout(() => this.onDeadline(id, req.deadline), Math.min(left, MAX_TIMER_MS));
      this.pending.set(id, p);
      if (this.readyInfo) this.write(frame);
      else this.ready.then(() => this.pending.get(id) === p && this.write(frame), () => {});
    });
  }

  /**
   * Hands a waiting stem cell its function: the whole environment it runs with and its working
   * directory. The runtime then loads the function and says `ready`.
   */
  load(env: string[], cwd: string): void {
    if (!this.stem || !this.stemInfo || this.loaded) throw new StreamError('PROTOCOL', 'load() is for a waiting stem cell, once');
    if (this.ended) throw new StreamError('CONNECTION_CLOSED', 'the connection to the stem cell has ended', { cause: this.ended.error });
    this.loaded = true;
    this.write(encodeFrame({ type: 'load', env, cwd }));
  }

  /**
   * Asks the runtime to finish what is in flight and exit; new invocations are refused.
   * Resolves when the connection has ended (the runtime exited).
   */
  shutdown(): Promise<CloseInfo> {
    if (!this.draining && !this.ended) {
      this.draining = true;
      const frame = encodeFrame({ type: 'shutdown' });
      // A stem cell nobody adopted takes its shutdown while it waits.
      if (this.readyInfo || (this.stemInfo && !this.loaded)) this.write(frame);
      else this.ready.then(() => this.write(frame), () => {});
    }
    return this.closed;
  }

  /** Ends the connection now: pending invocations reject with CONNECTION_CLOSED. */
  close(): void {
    this.end(undefined, 'the worker closed the connection');
  }

  private write(frame: Buffer[]): void {
    if (this.ended) return;
    // Frames written in the same turn of the event loop (a burst of invocations that arrived in
    // one NATS read) leave in one system call instead of one each.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    for (const b of frame) this.socket.write(b);
  }

  private onData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.end(err as FrameError);
      return;
    }
    for (const { header, body } of frames) {
      if (this.ended) return;
      this.dispatch(header, body);
    }
  }

  private dispatch(m: RuntimeMessage, body: Buffer): void {
    if (m.type === 'stem') {
      if (!this.stem || this.stemInfo || this.readyInfo) return this.protocolError('stem from a runtime that is no waiting stem cell');
      if (m.protocol !== STREAM_PROTOCOL_VERSION) return this.protocolError(`protocol version ${m.protocol} (this worker speaks ${STREAM_PROTOCOL_VERSION})`);
      this.stemInfo = { runtime: m.runtime, version: m.protocol, runtimeVersion: m.runtimeVersion };
      this.resolveWaiting(this.stemInfo);
      return;
    }
    if (m.type === 'ready') {
      if (this.readyInfo) return this.protocolError('a second ready');
      if (this.stem && !this.loaded) return this.protocolError('ready from a stem cell before load');
      if (m.protocol !== STREAM_PROTOCOL_VERSION) return this.protocolError(`protocol version ${m.protocol} (this worker speaks ${STREAM_PROTOCOL_VERSION})`);
      this.readyInfo = { runtime: m.runtime, version: m.protocol, runtimeVersion: m.runtimeVersion };
      this.resolveReady(this.readyInfo);
      return;
    }
    if (!this.readyInfo) return this.protocolError(`${m.type} before ready`);
    const p = this.pending.get(m.id);
    if (!p) {
      if (this.overdueIds.delete(m.id)) return; // answered after its deadline: already reported
      return this.protocolError(`a reply to unknown invocation "${m.id}"`);
    }
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.type === 'result') p.resolve({ contentType: m.contentType, body });
    else p.reject(new InvocationError(m.id, m.code, m.message, m.stack));
  }

  private onDeadline(id: string, deadline: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    const left = deadline - Date.now();
    if (left > 0) {
      p.timer = setTimeout(() => this.onDeadline(id, deadline), Math.min(left, MAX_TIMER_MS));
      return;
    }
    this.pending.delete(id);
    this.overdueIds.add(id);
    p.reject(new StreamError('DEADLINE_EXCEEDED', `invocation ${id} got no reply before its deadline`));
  }

  private protocolError(what: string): void {
    this.end(new StreamError('PROTOCOL', `the runtime broke the protocol: ${what}`));
  }

  private eofError(): Error | undefined {
    if (this.draining && this.pending.size === 0) return undefined;
    return new StreamError('CONNECTION_CLOSED', this.readyInfo ? 'the runtime closed the connection' : 'the runtime closed the connection before it was ready');
  }

  private end(error: Error | undefined, why = error?.message ?? 'the connection ended'): void {
    if (this.ended) return;
    this.ended = { error };
    this.socket.destroy();
    const closedError = new StreamError('CONNECTION_CLOSED', why, { cause: error });
    if (!this.readyInfo) this.rejectReady(closedError);
    if (!this.stemInfo) this.rejectWaiting(closedError);
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(closedError);
    }
    this.pending.clear();
    this.overdueIds.clear();
    this.resolveClosed(this.ended);
  }
}
