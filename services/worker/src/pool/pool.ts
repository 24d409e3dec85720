import { SkiffError, remainingMs, type Invocation, type RunSettings } from '@skiff/contracts';
import { type Logger } from '@skiff/service-kit';
import { InvocationError, StreamError, type InvokeReply } from '../stream/index.js';
import { exitFailure } from '../runner.js';
import { InstanceExited, type StreamInstance } from './instance.js';
import { failed, type Span } from '@skiff/telemetry';
import { startSpan } from '../tracing.js';
import { expiredIdle, pickInstance, startsNeeded, transition, type InstanceView } from './state.js';

export interface PoolDeps {
  /** Starts one container for this function version; `cause` is the invocation that waits for it, if one does. */
  launch: (cause: Invocation | undefined) => Promise<StreamInstance>;
  /** How many more instances of this size the node has room for. */
  room: () => number;
  maxWaiting: number;
  stopGraceMs: number;
  log: Logger;
}

/** A reply, and whether the invocation waited for its instance to start (a cold start). */
export type PoolReply = InvokeReply & { coldStart: boolean };

interface Waiter {
  inv: Invocation;
  body: Uint8Array;
  /** The wait, as a span of the invocation's trace. */
  span: Span;
  resolve: (r: PoolReply) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

/** A waiter gives up this long before its deadline, so the caller hears why in time. */
const GIVE_UP_MARGIN_MS = 50;
/** How long a stopped instance's exit may take to explain a broken connection. */
const EXIT_WAIT_MS = 1000;

/**
 * The warm instances of one function version on this node: reuse, scale up one start per
 * need, queue within bounds, scale to zero after the idle timeout, drain on a new version.
 */
export class FunctionPool {
  private readonly instances = new Set<StreamInstance>();
  private readonly waiting: Waiter[] = [];
  private draining = false;
  /** Starts whose container is not in `instances` yet (writing the bundle). */
  private launching = 0;
  /** Instances that have served an invocation. */
  private readonly served = new WeakSet<StreamInstance>();
  private lastStartError: unknown;

  constructor(
    readonly fn: string,
    readonly version: number,
    readonly settings: RunSettings,
    private readonly deps: PoolDeps,
  ) {}

  views(): InstanceView[] {
    return [...this.instances].map((i) => ({ id: i.id, state: i.state, inflight: i.inflight, lastUsedAt: i.lastUsedAt }));
  }

  get idle(): number {
    return [...this.instances].filter((i) => i.state === 'idle').length;
  }

  /** Instances starting (container being made included), idle or busy: what minInstances counts. */
  get present(): number {
    return this.launching + [...this.instances].filter((i) => i.state === 'starting' || i.state === 'idle' || i.state === 'busy').length;
  }

  /** Live instances (for the node's memory budget). */
  get live(): number {
    return [...this.instances].filter((i) => i.state !== 'stopped').length;
  }

  run(inv: Invocation, body: Uint8Array): Promise<PoolReply> {
    if (this.draining) return Promise.reject(new SkiffError('SKIFF_NO_CAPACITY', `version ${this.version} of "${this.fn}" is being replaced`));
    const inst = this.pick();
    if (inst) return this.execute(inst, inv, body, false);
    if (this.waiting.length >= this.deps.maxWaiting) {
      return Promise.reject(new SkiffError('SKIFF_OVERLOADED', `${this.waiting.length} invocations of "${this.fn}" are already waiting on this node`));
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        inv,
        body,
        span: startSpan('wait for an instance', inv, { 'faas.name': this.fn, 'faas.version': String(this.version), 'skiff.waiting': this.waiting.length }),
        resolve,
        reject,
        timer: setTimeout(() => this.giveUp(w), Math.max(0, remainingMs(inv.deadline) - GIVE_UP_MARGIN_MS)),
      };
      this.waiting.push(w);
      this.scale();
    });
  }

  private pick(): StreamInstance | undefined {
    const view = pickInstance(this.views(), this.settings.concurrency);
    return view && [...this.instances].find((i) => i.id === view.id);
  }

  private giveUp(w: Waiter): void {
    this.waiting.splice(this.waiting.indexOf(w), 1);
    const starting = [...this.instances].some((i) => i.state === 'starting');
    this.refuse(
      w,
      starting
        ? new SkiffError('SKIFF_DEADLINE_EXCEEDED', `no instance of "${this.fn}" was ready before the deadline`)
        : new SkiffError('SKIFF_NO_CAPACITY', `no instance of "${this.fn}" had room before the deadline`),
    );
  }

  /** Ends a waiter's wait with an error (it has been taken out of `waiting`). */
  private refuse(w: Waiter, err: SkiffError): void {
    clearTimeout(w.timer);
    failed(w.span, err);
    w.span.end();
    w.reject(err);
  }

  /** `waited`: the invocation queued for an instance; its start was cold if that instance had served none before. */
  private async execute(inst: StreamInstance, inv: Invocation, body: Uint8Array, waited: boolean): Promise<PoolReply> {
    const coldStart = waited && !this.served.has(inst);
    this.served.add(inst);
    inst.inflight++;
    inst.state = transition(inst.state, 'take');
    try {
      return { coldStart, ...(await inst.invoke({ id: `${inst.id}-${inv.callId}-${Date.now()}`, deadline: inv.deadline, callId: inv.callId, traceparent: inv.traceparent, tracestate: inv.tracestate, contentType: inv.contentType, attempt: inv.attempt, idempotencyKey: inv.idempotencyKey, event: inv.event }, body)) };
    } catch (err) {
      throw await this.failure(inst, err);
    } finally {
      inst.inflight--;
      inst.lastUsedAt = Date.now();
      if (inst.state !== 'stopped') inst.state = transition(inst.state, 'done', inst.inflight);
      this.dispatch();
    }
  }

  /** Turns what went wrong on an instance into the caller's error; replaces broken instances. */
  private async failure(inst: StreamInstance, err: unknown): Promise<SkiffError> {
    if (err instanceof InvocationError) {
      if (err.code === 'BAD_INPUT') return new SkiffError('SKIFF_VALIDATION_FAILED', `body: ${err.message}`, { errors: [{ field: 'body', message: err.message }] });
      if (err.code === 'OUTPUT_TOO_LARGE') return new SkiffError('SKIFF_FN_OUTPUT_TOO_LARGE', err.message);
      return new SkiffError('SKIFF_FN_FAILED', `function "${this.fn}" failed: ${err.message}`);
    }
    if (err instanceof StreamError && err.code === 'DEADLINE_EXCEEDED') {
      // An overrunning invocation takes its instance with it: it may be stuck for good.
      this.stopInstance(inst, 0);
      return new SkiffError('SKIFF_DEADLINE_EXCEEDED', `function "${this.fn}" ran past its deadline and its instance was stopped`);
    }
    if (err instanceof StreamError && (err.code === 'CONNECTION_CLOSED' || err.code === 'PROTOCOL')) {
      inst.kill();
      const exit = await Promise.race([inst.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), EXIT_WAIT_MS))]);
      const e = exit ? exitFailure(this.fn, exit.code, exit.signal, exit.stderr) : new SkiffError('SKIFF_FN_FAILED', `the instance of "${this.fn}" broke its connection`);
      return new SkiffError(e.code, `${e.message} (the instance was replaced)`);
    }
    if (err instanceof StreamError && err.code === 'BODY_TOO_LARGE') return new SkiffError('SKIFF_BODY_TOO_LARGE', err.message);
    return new SkiffError('SKIFF_INTERNAL', 'the invocation failed on the worker', { cause: err });
  }

  /** Hands waiting invocations to instances with room, oldest first. */
  private dispatch(): void {
    while (this.waiting.length > 0) {
      const inst = this.pick();
      if (!inst) break;
      const w = this.waiting.shift()!;
      clearTimeout(w.timer);
      w.span.setAttribute('skiff.instance.id', inst.id).end();
      this.execute(inst, w.inv, w.body, true).then(w.resolve, w.reject);
    }
    if (this.waiting.length > 0) this.scale();
  }

  /**
   * Starts what the waiting invocations and minInstances need, within the limits, counting the
   * starts under way: calling it again starts nothing more. Returns how many it started.
   */
  scale(): number {
    if (this.draining) return 0;
    const launching = Array.from({ length: this.launching }, (_, i): InstanceView => ({ id: `launching-${i}`, state: 'starting', inflight: 0, lastUsedAt: 0 }));
    const n = startsNeeded([...this.views(), ...launching], this.waiting.length, this.settings, this.deps.room() - this.launching);
    // Each start is on behalf of the first waiter no start under way is for (none: minInstances).
    const waiting = this.waiting.slice(this.launching);
    for (let i = 0; i < n; i++) void this.start(waiting[i]?.inv);
    return n;
  }

  private async start(cause: Invocation | undefined): Promise<void> {
    let inst: StreamInstance;
    this.launching++;
    try {
      inst = await this.deps.launch(cause);
    } catch (err) {
      return this.startFailed(err);
    } finally {
      this.launching--;
    }
    this.instances.add(inst);
    let served = false;
    void inst.exited.then((exit) => {
      this.instances.delete(inst);
      if (exit.code !== 0) this.deps.log.warn({ fn: this.fn, version: this.version, instance: inst.id, code: exit.code, signal: exit.signal }, 'instance exited');
      // An instance that never got ready is startFailed's business: no restart loop from here.
      if (served) this.dispatch();
    });
    // Made while the version was being replaced or the function deleted: it serves nothing.
    if (this.draining) return this.stopInstance(inst, this.deps.stopGraceMs);
    try {
      await inst.ready();
    } catch (err) {
      inst.kill();
      return this.startFailed(err instanceof InstanceExited ? exitFailure(this.fn, err.exit.code, err.exit.signal, err.exit.stderr) : err);
    }
    if (inst.state !== 'starting') return;
    served = true;
    inst.state = transition(inst.state, 'ready');
    inst.lastUsedAt = Date.now();
    this.lastStartError = undefined;
    this.dispatch();
  }

  /**
   * A start that fails fails the waiting invocations, unless a ready instance will serve them:
   * another start would most likely fail the same way, and a loop of restarts helps no one.
   */
  private startFailed(err: unknown): void {
    this.lastStartError = err;
    this.deps.log.warn({ fn: this.fn, version: this.version, err }, 'instance failed to start');
    if ([...this.instances].some((i) => i.state === 'idle' || i.state === 'busy')) return;
    const e = err instanceof SkiffError ? err : new SkiffError('SKIFF_CONTAINER_FAILED', `an instance of "${this.fn}" could not start: ${(err as Error).message}`, { cause: err });
    for (const w of this.waiting.splice(0)) this.refuse(w, e);
  }

  private stopInstance(inst: StreamInstance, graceMs: number): void {
    if (inst.state !== 'stopped' && inst.state !== 'draining') inst.state = transition(inst.state, 'drain');
    void inst.stop(graceMs);
  }

  /** Stops idle instances past the idle timeout (keeping minInstances) and restores the minimum. */
  reap(now = Date.now()): void {
    for (const v of expiredIdle(this.views(), now, this.settings)) {
      const inst = [...this.instances].find((i) => i.id === v.id);
      if (inst) this.stopInstance(inst, this.deps.stopGraceMs);
    }
    this.scale();
  }

  /** Takes no more work; instances finish what they run and stop. Resolves when all are gone. */
  async drain(): Promise<void> {
    this.draining = true;
    for (const w of this.waiting.splice(0)) this.refuse(w, new SkiffError('SKIFF_NO_CAPACITY', `version ${this.version} of "${this.fn}" is being replaced`));
    await Promise.all([...this.instances].map((i) => (this.stopInstance(i, this.deps.stopGraceMs), i.exited)));
  }

  get empty(): boolean {
    return this.instances.size === 0 && this.waiting.length === 0;
  }

  get startError(): unknown {
    return this.lastStartError;
  }
}
