import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { PROTOCOL_VERSION, SUBJECTS, SkiffError, decodeInvocation, replyCallId, decodeJson, encodeError, encodeJson, encodeResultHeaders, fnChangedSchema, healthAnswerSchema, heartbeatSchema, leaveSchema, type Invocation } from '@skiff/contracts';
import { type Logger } from '@skiff/service-kit';
import { SpanKind, contextFrom, failed, tracer, under, type Span, type TraceCarrier } from '@skiff/telemetry';
import type { ImageStore } from '@skiff/image';
import { invocationEnv, runtimeSpec } from './bundle.js';
import { removeEmptyFunctionCgroups, removeFunctionCgroups } from './cgroups.js';
import type { WorkerConfig } from './config.js';
import { ImageCache, type PreparedImage } from './images.js';
import { removeLeftovers } from './leftovers.js';
import { StreamInstance } from './pool/instance.js';
import { FunctionPool, type PoolReply } from './pool/pool.js';
import { LauncherPool, canPrestart } from './prestart.js';
import { runExec } from './runner.js';
import { defaultSeccompProfile } from './seccomp.js';
import { Slots } from './slots.js';
import { StemHelper } from './stem/helper.js';
import { StemPool, type Adopter } from './stem/pool.js';
import { UidRanges } from './uids.js';
import { inSpan, startSpan } from './tracing.js';
import { InvocationMetrics, type InstanceCounts } from './invocation-metrics.js';

const REAP_INTERVAL_MS = 1000;
const TRACER = tracer('@skiff/worker');
/** A deleted function's cgroups are tried this many times (once per reap) while containers drain. */
const CGROUP_REMOVAL_TRIES = 60;
const STOP_GRACE_MS = 2000;
/** Launchers kept started ahead for exec invocations: enough for a small burst, each a waiting process. */
const PRESTARTED_LAUNCHERS = 2;
/**
 * After work finishes, the node's load is reported within this long (not only at the next
 * heartbeat), so the schedulers' estimates of free slots and warm instances stay close.
 */
const LOAD_REPORT_MS = 20;

/** The OpenTelemetry FaaS trigger of an invocation: a schedule's tick, a NATS message, or an HTTP call. */
function triggerOf(inv: Invocation): 'timer' | 'pubsub' | 'http' {
  if (!inv.event) return 'http';
  return inv.event.subject === SUBJECTS.scheduleEvent(inv.fn) ? 'timer' : 'pubsub';
}

/**
 * The worker agent of one node: announces itself with heartbeats, takes invocations placed on
 * this node and answers straight to the caller's inbox. exec functions run one container per
 * invocation within the node's slots; stream functions run on pools of warm instances.
 */
export class WorkerAgent {
  private readonly subs: Subscription[] = [];
  private readonly loops: Promise<void>[] = [];
  private beat: NodeJS.Timeout | undefined;
  private reaper: NodeJS.Timeout | undefined;
  private loadReport: NodeJS.Timeout | undefined;
  private stopping = false;
  /** Set once the last heartbeat has gone out. */
  private gone = false;
  private readonly running = new Set<Promise<void>>();
  private readonly images: ImageCache;
  private readonly slots: Slots;
  private readonly uids: UidRanges;
  private readonly seccomp = defaultSeccompProfile();
  /** Warm pools by `fn@version`. */
  private readonly pools = new Map<string, FunctionPool>();
  private readonly metrics: InvocationMetrics;
  /** Digests this node has unpacked, for placement. */
  private readonly unpacked = new Set<string>();
  /** Launchers waiting for exec invocations (skiff-launch only). */
  private readonly launchers: LauncherPool | undefined;
  /** One OCI bundle directory per instance, named by its instance id. */
  private readonly bundlesDir: string;
  /** Deleted functions whose cgroups are still to remove, with the tries left. */
  private readonly retiredCgroups = new Map<string, number>();
  /** Node runtime containers waiting for a stream function new to this node (skiff-launch only). */
  private readonly stems: StemPool | undefined;
  private readonly stemHelper: StemHelper | undefined;

  constructor(
    private readonly nc: NatsConnection,
    store: ImageStore,
    private readonly config: WorkerConfig,
    private readonly log: Logger,
  ) {
    this.images = new ImageCache(store, join(config.workDir, 'images'), log);
    this.metrics = new InvocationMetrics(() => this.instanceCounts());
    this.slots = new Slots({ size: config.slots, maxWaiting: config.maxQueued, perFunction: config.functionSlots, perFunctionWaiting: config.functionQueue });
    this.uids = new UidRanges(join(config.workDir, 'uids.json'), config.uidBase);
    this.bundlesDir = join(config.workDir, 'bundles');
    if (canPrestart(config.runtime)) this.launchers = new LauncherPool(config.runtime, this.bundlesDir, PRESTARTED_LAUNCHERS);
    // Stem cells rely on skiff-launch's order (every mount made before the user namespace) and
    // on skiff-stem being built.
    const helper = new StemHelper(config.stemHelper);
    if (config.stemCells + config.stemFunctions > 0 && canPrestart(config.runtime) && helper.available && process.getuid?.() === 0) {
      this.stemHelper = helper;
      this.stems = new StemPool({
        target: config.stemCells,
        perFunction: config.stemFunctions,
        imageRef: config.stemImage,
        runtime: config.runtime,
        bundlesDir: this.bundlesDir,
        maxBodyBytes: config.maxOutputBytes,
        maxLineBytes: config.maxLogLineBytes,
        seccomp: this.seccomp,
        store,
        images: this.images,
        uids: this.uids,
        helper,
        log: log.child({ component: 'stems' }),
        onChange: () => this.reportLoadSoon(),
      });
    } else if (config.stemCells + config.stemFunctions > 0) {
      log.info({ runtime: config.runtime, helper: config.stemHelper, helperBuilt: helper.available }, 'no stem cells: they need skiff-launch, skiff-stem and root');
    }
  }

  /** Stream instances by function and state, for the skiff.instances gauge. */
  private instanceCounts(): InstanceCounts[] {
    const counts = new Map<string, InstanceCounts>();
    for (const pool of this.pools.values()) {
      for (const v of pool.views()) {
        const key = `${pool.fn}\0${v.state}`;
        const c = counts.get(key) ?? { fn: pool.fn, state: v.state, count: 0 };
        c.count++;
        counts.set(key, c);
      }
    }
    return [...counts.values()];
  }

  /** Invocations taken by this node: running or waiting. */
  get inflight(): number {
    return this.running.size;
  }

  /** Removes what a dead predecessor of this node left, then joins: heartbeats, invocations. */
  async start(): Promise<void> {
    // Bundles are read only as their containers start: any here are from a worker that died,
    // and so are their containers, cgroups and the image mounts (leftovers.ts).
    await removeLeftovers({ runtime: this.config.runtime, bundlesDir: this.bundlesDir, imagesDir: join(this.config.workDir, 'images'), log: this.log });
    this.serve(this.nc.subscribe(SUBJECTS.nodeInvoke(this.config.nodeId)), (m) => this.track(this.handle(m)));
    this.serve(this.nc.subscribe(SUBJECTS.nodeWarm(this.config.nodeId)), (m) => this.onWarm(m));
    this.serve(this.nc.subscribe(SUBJECTS.fnChanged), (m) => this.onFnChanged(m));
    // Coalesced like load reports: a flood of roll calls costs one heartbeat per 20 ms at most.
    this.serve(this.nc.subscribe(SUBJECTS.rollCall), () => this.reportLoadSoon());
    // Answered while the node takes work; a leaving node has drained this subscription.
    this.serve(this.nc.subscribe(SUBJECTS.health), (m) => m.respond(encodeJson(healthAnswerSchema, { type: 'health', version: PROTOCOL_VERSION, role: 'worker', id: this.config.nodeId, problems: [] })));
    this.launchers?.fill();
    this.stems?.fill();
    this.heartbeat();
    this.beat = setInterval(() => this.heartbeat(), this.config.heartbeatMs);
    this.reaper = setInterval(() => this.reap(), REAP_INTERVAL_MS);
    this.reaper.unref();
    void removeEmptyFunctionCgroups().then(
      (n) => n > 0 && this.log.info({ removed: n }, 'removed empty function cgroups left from before'),
      (err: unknown) => this.log.warn({ err }, 'cannot remove empty function cgroups'),
    );
  }

  private serve(sub: Subscription, each: (m: Msg) => void): void {
    this.subs.push(sub);
    this.loops.push(
      (async () => {
        for await (const m of sub) each(m);
      })(),
    );
  }

  private track(job: Promise<void>): void {
    const tracked = job.finally(() => {
      this.running.delete(tracked);
      this.reportLoadSoon();
    });
    this.running.add(tracked);
  }

  private reportLoadSoon(): void {
    this.loadReport ??= setTimeout(() => {
      this.loadReport = undefined;
      this.heartbeat();
    }, LOAD_REPORT_MS);
  }

  private heartbeat(): void {
    if (this.gone) return;
    const { nodeId, slots, heartbeatMs } = this.config;
    const warm = [...this.pools.values()]
      .map((p) => ({ fn: p.fn, version: p.version, idle: p.idle, instances: p.present }))
      .filter((w) => w.idle > 0 || w.instances > 0);
    this.nc.publish(
      SUBJECTS.heartbeat,
      encodeJson(heartbeatSchema, {
        type: 'heartbeat',
        version: PROTOCOL_VERSION,
        nodeId,
        sentAt: Date.now(),
        slots,
        inflight: this.inflight,
        intervalMs: heartbeatMs,
        // Once the node said it is leaving, its heartbeats must not bring it back into placement.
        draining: this.stopping,
        images: [...this.unpacked],
        warm,
        ...(this.stems ? { stems: this.stems.counts } : {}),
      }),
    );
  }

  private async handle(m: Msg): Promise<void> {
    const t0 = performance.now();
    let inv: Invocation | undefined;
    let span: Span | undefined;
    // Set once an exec invocation's container is started: a cold start even if the function then fails.
    const exec = { started: false };
    try {
      inv = decodeInvocation(m.headers);
      span = TRACER.startSpan(`invoke ${inv.fn}`, { kind: SpanKind.SERVER, attributes: { 'faas.name': inv.fn, 'faas.version': String(inv.fnVersion), 'faas.invocation_id': inv.callId, 'faas.trigger': triggerOf(inv), 'skiff.node.id': this.config.nodeId } }, contextFrom(inv));
      // What runs on the invocation's behalf, the function included, is a child of this span.
      const traced = under(inv, span);
      const output = inv.mode === 'stream' ? await this.runStream(traced, m.data) : { ...(await this.runExecMode(traced, m.data, exec)), contentType: undefined };
      span.setAttribute('faas.coldstart', output.coldStart);
      if (m.reply) m.respond(output.body, { headers: encodeResultHeaders(inv.callId, true, output.contentType) });
      this.metrics.invoked({ fn: inv.fn, version: inv.fnVersion, trigger: triggerOf(inv), error: undefined, coldStart: output.coldStart, seconds: (performance.now() - t0) / 1000 });
    } catch (err) {
      if (span) failed(span.setAttribute('faas.coldstart', exec.started), err);
      const e = err instanceof SkiffError ? err : new SkiffError('SKIFF_INTERNAL', 'the worker failed to run the function', { cause: err });
      // A message that was no invocation at all is not counted as one.
      if (inv) this.metrics.invoked({ fn: inv.fn, version: inv.fnVersion, trigger: triggerOf(inv), error: e.code, coldStart: exec.started, seconds: (performance.now() - t0) / 1000 });
      const level = e.code === 'SKIFF_FN_FAILED' ? 'info' : 'warn';
      this.log[level]({ callId: inv?.callId, traceId: span?.spanContext().traceId, fn: inv?.fn, code: e.code, err: e.cause ?? e.message }, e.message);
      // A refused message is answered too (with its call id when that was valid), so its
      // sender hears why rather than waiting for its deadline.
      if (m.reply) m.respond(encodeError(e), { headers: encodeResultHeaders(inv?.callId ?? replyCallId(m.headers), false) });
    } finally {
      span?.end();
    }
  }

  /** The image, unpacked or found unpacked, in a span of `parent`'s trace. */
  private prepare(digest: string, parent: TraceCarrier | undefined): Promise<PreparedImage & { release: () => void }> {
    return inSpan('image prepare', parent, { 'skiff.image.digest': digest, 'skiff.image.cached': this.unpacked.has(digest) }, async () => {
      const image = await this.images.acquire(digest);
      this.unpacked.add(digest);
      return image;
    });
  }

  /** The runtime spec of one instance; an image that cannot be run is the image's fault. */
  private spec(image: PreparedImage, inv: Invocation, instanceId: string, env: string[], hostId = this.uids.hostIdFor(inv.fn)): object {
    try {
      return runtimeSpec({ rootfs: image.rootfs, image: image.config, fn: inv.fn, settings: inv.settings, env, instanceId, hostId, seccomp: this.seccomp });
    } catch (err) {
      throw new SkiffError('SKIFF_IMAGE_INVALID', `image ${inv.image}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Every exec invocation starts its container: a cold start each time. */
  private async runExecMode(inv: Invocation, body: Uint8Array, exec: { started: boolean }): Promise<{ body: Uint8Array; coldStart: true }> {
    const release = await this.slots.acquire(inv.fn, inv.deadline);
    const image = await this.prepare(inv.image, inv).catch((err: unknown) => (release(), Promise.reject(err)));
    try {
      // Instance ids are the worker's own: call ids come from clients and may repeat.
      const prestarted = this.launchers?.take();
      const instanceId = prestarted?.instanceId ?? randomBytes(8).toString('hex');
      let spec: object;
      try {
        spec = this.spec(image, inv, instanceId, invocationEnv(inv));
      } catch (err) {
        prestarted?.cancel();
        throw err;
      }
      exec.started = true;
      const { stdout } = await inSpan('container run', inv, { 'skiff.instance.id': instanceId, 'skiff.launcher.ahead': prestarted !== undefined }, () =>
        runExec({
          runtime: this.config.runtime,
          bundleDir: join(this.bundlesDir, instanceId),
          prestarted,
          spec,
          invocation: inv,
          body,
          maxOutputBytes: this.config.maxOutputBytes,
        }),
      );
      return { body: stdout, coldStart: true };
    } finally {
      image.release();
      release();
      this.launchers?.refill();
    }
  }

  private runStream(inv: Invocation, body: Uint8Array): Promise<PoolReply> {
    return this.pool(inv).run(inv, body);
  }

  /** The pool of this function version; older versions of the function start draining. */
  private pool(inv: Invocation): FunctionPool {
    const key = `${inv.fn}@${inv.fnVersion}`;
    let pool = this.pools.get(key);
    if (pool) return pool;
    this.drainPools(inv.fn, (p) => p.version < inv.fnVersion);
    pool = new FunctionPool(inv.fn, inv.fnVersion, inv.settings, {
      launch: (cause) => this.launch(inv, cause),
      room: () => this.room(inv.fn, inv.settings.memoryMb),
      maxWaiting: this.config.maxQueued,
      stopGraceMs: STOP_GRACE_MS,
      log: this.log,
    });
    this.pools.set(key, pool);
    return pool;
  }

  /**
   * Starts an instance of `inv`'s version, in a span of the trace of `cause`, the invocation
   * that waits for it (none for minInstances): ended once the instance is ready.
   */
  private async launch(inv: Invocation, cause: Invocation | undefined): Promise<StreamInstance> {
    const t0 = performance.now();
    const span = startSpan('instance start', cause, { 'faas.name': inv.fn, 'faas.version': String(inv.fnVersion) });
    try {
      const inst = await this.startInstance(inv, span);
      span.setAttribute('skiff.instance.id', inst.id);
      void inst.ready().then(
        () => (this.metrics.instanceStarted(inv.fn, inv.fnVersion, (performance.now() - t0) / 1000), span.end()),
        (err: unknown) => (failed(span, err), span.end()),
      );
      return inst;
    } catch (err) {
      failed(span, err);
      span.end();
      throw err;
    }
  }

  private async startInstance(inv: Invocation, span: Span): Promise<StreamInstance> {
    const t0 = performance.now();
    const image = await this.prepare(inv.image, under({}, span));
    const instanceId = randomBytes(8).toString('hex');
    const env = [
      `SKIFF_FUNCTION=${inv.fn}`,
      `SKIFF_FUNCTION_VERSION=${inv.fnVersion}`,
      `SKIFF_MAX_BODY_BYTES=${this.config.maxOutputBytes}`,
    ];
    const log = this.log.child({ fn: inv.fn, version: inv.fnVersion });
    const adopter: Adopter = { inv, image, generation: this.stems?.generation(inv.fn) ?? 0, spec: (hostId) => this.spec(image, inv, instanceId, env, hostId) as ReturnType<Adopter['spec']>, log };
    try {
      const adopted = await this.adoptStem(adopter);
      span.setAttribute('skiff.instance.stem_cell', adopted !== undefined);
      const inst =
        adopted ??
        (await StreamInstance.launch({
          runtime: this.config.runtime,
          bundleDir: join(this.bundlesDir, instanceId),
          spec: this.spec(image, inv, instanceId, env),
          maxBodyBytes: this.config.maxOutputBytes,
          maxLineBytes: this.config.maxLogLineBytes,
          log,
        }));
      // The image stays leased (never evicted) while the instance lives.
      void inst.exited.then(image.release);
      // Once it serves, the function may keep a stem cell in its range for its next instance.
      void inst.ready().then(
        () => {
          log.debug({ instance: inst.id, stemCell: adopted !== undefined, ms: Math.round((performance.now() - t0) * 1000) / 1000 }, 'instance ready');
          return this.stems?.started(adopter).catch((err: unknown) => log.warn({ err }, 'cannot keep a stem cell for the function'));
        },
        () => undefined,
      );
      return inst;
    } catch (err) {
      image.release();
      throw err;
    }
  }

  /**
   * The function's instance from a stem cell, when one waits and the function fits it;
   * otherwise undefined, and the caller starts a container for it. A failed adoption is logged
   * and answered the same way: the function's start never depends on a stem cell.
   */
  private async adoptStem(adopter: Adopter): Promise<StreamInstance | undefined> {
    if (!this.stems) return undefined;
    try {
      const adopted = await this.stems.adopt(adopter);
      if (adopted) adopter.log.debug({ instance: adopted.id }, 'instance from a stem cell');
      return adopted;
    } catch (err) {
      adopter.log.warn({ err }, 'adopting a stem cell failed; starting a container for the function instead');
      return undefined;
    }
  }

  /**
   * Instances of `memoryMb` that still fit both the node's memory budget and the function's
   * share of it (all its versions together), so one busy function leaves room for the others.
   */
  private room(fn: string, memoryMb: number): number {
    let used = 0;
    let usedByFn = 0;
    for (const p of this.pools.values()) {
      const mb = p.live * p.settings.memoryMb;
      used += mb;
      if (p.fn === fn) usedByFn += mb;
    }
    const free = Math.min(this.config.memoryBudgetMb - used, this.config.functionMemoryMb - usedByFn);
    return Math.max(0, Math.floor(free / memoryMb));
  }

  private drainPools(fn: string, which: (p: FunctionPool) => boolean): void {
    for (const [key, p] of this.pools) {
      if (p.fn !== fn || !which(p)) continue;
      this.pools.delete(key);
      this.log.info({ fn, version: p.version }, 'draining instances of a replaced version');
      void p.drain();
    }
  }

  private onFnChanged(m: Msg): void {
    try {
      const change = decodeJson(fnChangedSchema, m.data, 'function change');
      this.drainPools(change.fn, (p) => change.fnVersion === null || p.version !== change.fnVersion);
      if (change.fnVersion === null) this.stems?.forget(change.fn);
      if (change.fnVersion === null) this.retiredCgroups.set(change.fn, CGROUP_REMOVAL_TRIES);
      else this.retiredCgroups.delete(change.fn);
    } catch (err) {
      this.log.warn({ err }, 'function change rejected');
    }
  }

  /**
   * Brings a stream function version up to its minimum of instances on this node, before any
   * invocation needs them. Means "have at least minInstances": gateways repeat it until their
   * heartbeats show the instances, so what is running or starting already is counted.
   */
  private onWarm(m: Msg): void {
    try {
      const inv = decodeInvocation(m.headers);
      if (inv.mode !== 'stream' || inv.settings.minInstances === 0 || this.stopping) return;
      // A request that crossed a deploy on the way must not bring an old version back.
      if ([...this.pools.values()].some((p) => p.fn === inv.fn && p.version > inv.fnVersion)) {
        return this.log.debug({ fn: inv.fn, version: inv.fnVersion }, 'warm request for a replaced version ignored');
      }
      const started = this.pool(inv).scale();
      const fields = { fn: inv.fn, version: inv.fnVersion, minInstances: inv.settings.minInstances, started };
      if (started > 0) this.log.info(fields, 'starting the minimum of warm instances');
      else this.log.debug(fields, 'warm request started nothing: the minimum is running or starting, or there is no room');
    } catch (err) {
      this.log.warn({ err }, 'warm request rejected');
    }
  }

  private reap(): void {
    this.stems?.fill();
    const now = Date.now();
    for (const [key, p] of this.pools) {
      p.reap(now);
      if (p.empty && p.settings.minInstances === 0) this.pools.delete(key);
    }
    this.removeRetiredCgroups();
  }

  /** One try per deleted function: a cgroup stays while its last containers stop. */
  private removeRetiredCgroups(): void {
    for (const [fn, left] of this.retiredCgroups) {
      this.retiredCgroups.set(fn, left - 1);
      void removeFunctionCgroups(fn).then(
        (gone) => {
          if (this.retiredCgroups.get(fn) !== left - 1) return; // deployed again, or tried once more since
          if (gone) this.retiredCgroups.delete(fn);
          else if (left <= 1) {
            this.retiredCgroups.delete(fn);
            this.log.warn({ fn }, 'the cgroups of a deleted function are still in use; left in place');
          }
        },
        (err: unknown) => {
          this.retiredCgroups.delete(fn);
          this.log.warn({ err, fn }, 'cannot remove the cgroups of a deleted function');
        },
      );
    }
  }

  /** Leaves the node table, takes no new work, finishes what it has, stops instances, unmounts. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.reaper) clearInterval(this.reaper);
    this.nc.publish(SUBJECTS.leave, encodeJson(leaveSchema, { type: 'leave', version: PROTOCOL_VERSION, nodeId: this.config.nodeId }));
    for (const s of this.subs) await s.drain();
    await Promise.all(this.loops);
    // Heartbeats go on (marked draining) while calls finish: if this process is killed now,
    // the gateways see the node lost and fail its calls instead of waiting for their deadline.
    await Promise.allSettled([...this.running]);
    if (this.beat) clearInterval(this.beat);
    clearTimeout(this.loadReport);
    this.heartbeat(); // draining, nothing in flight: the node is done
    this.gone = true;
    this.launchers?.close();
    await this.stems?.close();
    this.stemHelper?.close();
    await Promise.allSettled([...this.pools.values()].map((p) => p.drain()));
    this.pools.clear();
    await this.images.close();
    await this.nc.flush();
  }
}
