import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  PROTOCOL_VERSION,
  SUBJECTS,
  SkiffError,
  decodeInvocation,
  encodeError,
  encodeJson,
  encodeResultHeaders,
  heartbeatSchema,
  leaveSchema,
  type Invocation,
  type Logger,
} from '@skiff/contracts';
import type { ImageStore } from '@skiff/image';
import { runtimeSpec } from './bundle.js';
import type { WorkerConfig } from './config.js';
import { ImageCache } from './images.js';
import { runExec } from './runner.js';
import { Slots } from './slots.js';

/**
 * The worker agent of one node: announces itself with heartbeats, takes invocations placed on
 * this node, runs each in a container and answers straight to the caller's inbox.
 */
export class WorkerAgent {
  private sub: Subscription | undefined;
  private loop: Promise<void> | undefined;
  private beat: NodeJS.Timeout | undefined;
  private readonly running = new Set<Promise<void>>();
  private readonly images: ImageCache;
  private readonly slots: Slots;

  constructor(
    private readonly nc: NatsConnection,
    store: ImageStore,
    private readonly config: WorkerConfig,
    private readonly log: Logger,
  ) {
    this.images = new ImageCache(store, join(config.workDir, 'images'), log);
    this.slots = new Slots(config.slots, config.maxQueued);
  }

  /** Invocations taken by this node: running or waiting for a slot. */
  get inflight(): number {
    return this.running.size;
  }

  start(): void {
    this.sub = this.nc.subscribe(SUBJECTS.nodeInvoke(this.config.nodeId));
    this.loop = this.take(this.sub);
    this.heartbeat();
    this.beat = setInterval(() => this.heartbeat(), this.config.heartbeatMs);
  }

  private async take(sub: Subscription): Promise<void> {
    for await (const m of sub) {
      const job = this.handle(m).finally(() => this.running.delete(job));
      this.running.add(job);
    }
  }

  private heartbeat(): void {
    const { nodeId, slots, heartbeatMs } = this.config;
    this.nc.publish(
      SUBJECTS.heartbeat,
      encodeJson(heartbeatSchema, { type: 'heartbeat', version: PROTOCOL_VERSION, nodeId, sentAt: Date.now(), slots, inflight: this.inflight, intervalMs: heartbeatMs }),
    );
  }

  private async handle(m: Msg): Promise<void> {
    let inv: Invocation | undefined;
    try {
      inv = decodeInvocation(m.headers);
      const output = await this.run(inv, m.data);
      if (m.reply) m.respond(output, { headers: encodeResultHeaders(inv.callId, true) });
    } catch (err) {
      const e = err instanceof SkiffError ? err : new SkiffError('SKIFF_INTERNAL', 'the worker failed to run the function', { cause: err });
      const level = e.code === 'SKIFF_FN_FAILED' ? 'info' : 'warn';
      this.log[level]({ callId: inv?.callId, fn: inv?.fn, code: e.code, err: e.cause ?? e.message }, e.message);
      if (m.reply && inv) m.respond(encodeError(e), { headers: encodeResultHeaders(inv.callId, false) });
    }
  }

  private async run(inv: Invocation, body: Uint8Array): Promise<Uint8Array> {
    const release = await this.slots.acquire(inv.deadline);
    try {
      return await this.runInSlot(inv, body);
    } finally {
      release();
    }
  }

  private async runInSlot(inv: Invocation, body: Uint8Array): Promise<Uint8Array> {
    const image = await this.images.prepare(inv.image);
    let spec: object;
    try {
      spec = runtimeSpec({ rootfs: image.rootfs, image: image.config, invocation: inv });
    } catch (err) {
      throw new SkiffError('SKIFF_IMAGE_INVALID', `image ${inv.image}: ${(err as Error).message}`, { cause: err });
    }
    const started = performance.now();
    const { stdout, stderrTail } = await runExec({
      runtime: this.config.runtime,
      // Instance ids are the worker's own: call ids come from clients and may repeat.
      bundleDir: join(this.config.workDir, 'bundles', randomBytes(8).toString('hex')),
      spec,
      invocation: inv,
      body,
      maxOutputBytes: this.config.maxOutputBytes,
    });
    this.log.debug({ callId: inv.callId, fn: inv.fn, ms: +(performance.now() - started).toFixed(2), stderr: stderrTail || undefined }, 'invocation done');
    return stdout;
  }

  /** Leaves the node table, takes no new work, finishes what it has. */
  async stop(): Promise<void> {
    if (this.beat) clearInterval(this.beat);
    this.nc.publish(SUBJECTS.leave, encodeJson(leaveSchema, { type: 'leave', version: PROTOCOL_VERSION, nodeId: this.config.nodeId }));
    await this.sub?.drain();
    await this.loop;
    await Promise.allSettled([...this.running]);
    await this.nc.flush();
  }
}
