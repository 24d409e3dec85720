import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { PROTOCOL_VERSION, QUEUE_GROUPS, SUBJECTS, SkiffError, decodeInvocation, encodeError, encodeJson, encodePlacedHeaders, encodeResultHeaders, nodeTableSchema, remainingMs } from '@skiff/contracts';
import { DeadLetters, InvocationRecords, ensureEventStreams } from '@skiff/events';
import { NodeDirectory, toEntries, type NodeTable } from '@skiff/placement';
import { type Logger } from '@skiff/service-kit';
import type { SchedulerConfig } from './config.js';
import { AsyncDelivery } from './delivery.js';
import { NodeCalls } from './node-calls.js';
import { Schedules } from './schedules.js';
import { SubjectTriggers } from './triggers.js';

/**
 * How long an invocation taken by a scheduler that died waits before JetStream offers it again;
 * a live one extends it with working() every third of it while a call runs.
 */
const ACK_WAIT_MS = 10_000;
/** While JetStream cannot be set up (not enabled, or unreachable), it is tried again this often. */
const EVENTS_RETRY_MS = 5000;

const EMPTY = new Uint8Array(0);

/**
 * Keeps the node table from worker heartbeats and places invocations: asked where one should
 * run, it answers with a node, and the asker sends it there itself. The scheduler never
 * forwards a call: the asker sees at once when nothing listens on that node (NATS tells the
 * publisher), and no one but the gateway may publish on its inboxes (docs/security.md #26).
 */
export class Scheduler {
  private readonly directory: NodeDirectory;
  /** Calls to worker nodes, failed at once when their node is lost. */
  private readonly calls: NodeCalls;
  private readonly subs: Subscription[] = [];
  private readonly loops: Promise<void>[] = [];
  private delivery: AsyncDelivery | undefined;
  private triggers: SubjectTriggers | undefined;
  private schedules: Schedules | undefined;
  private schedulesRetry: NodeJS.Timeout | undefined;
  private eventsRetry: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly config: SchedulerConfig,
    private readonly log: Logger,
  ) {
    this.directory = new NodeDirectory(nc, { missedHeartbeats: config.missedHeartbeats, log, announce: true });
    this.calls = new NodeCalls(nc, this.directory);
  }

  start(): void {
    this.directory.start();
    this.serve(this.nc.subscribe(SUBJECTS.invoke, { queue: QUEUE_GROUPS.schedulers }), (m) => this.onInvoke(m));
    this.serve(this.nc.subscribe(SUBJECTS.nodesList, { queue: QUEUE_GROUPS.schedulers }), (m) => this.onNodesList(m));
    void this.startDelivery();
  }

  /** Async delivery, once JetStream has its streams; sync placement does not wait for it. */
  private async startDelivery(): Promise<void> {
    try {
      await ensureEventStreams(this.nc, this.config.eventLimits);
      const delivery = new AsyncDelivery(this.nc, this.directory, this.calls, await InvocationRecords.open(this.nc), await DeadLetters.open(this.nc), { maxInFlight: this.config.asyncMaxInFlight, ackWaitMs: ACK_WAIT_MS }, this.log);
      await delivery.start();
      if (this.stopping) return void (await delivery.stop());
      this.delivery = delivery;
      this.log.info('delivering async invocations');
      void this.startTriggers();
      void this.startSchedules();
    } catch (err) {
      if (this.stopping) return;
      this.log.error({ err }, `cannot set up JetStream for async invocations; trying again in ${EVENTS_RETRY_MS} ms`);
      this.eventsRetry = setTimeout(() => void this.startDelivery(), EVENTS_RETRY_MS);
    }
  }

  /** Subject triggers, once the streams exist (startDelivery made them); tried again until it works. */
  private async startTriggers(): Promise<void> {
    const triggers = new SubjectTriggers(this.nc, this.directory, this.calls, { maxBodyBytes: this.config.maxBodyBytes, maxInFlight: this.config.triggerMaxInFlight }, this.log);
    try {
      await triggers.start();
      if (this.stopping) return void (await triggers.stop());
      this.triggers = triggers;
    } catch (err) {
      if (this.stopping) return;
      this.log.error({ err }, `cannot read the trigger entries; trying again in ${EVENTS_RETRY_MS} ms`);
      this.eventsRetry = setTimeout(() => void this.startTriggers(), EVENTS_RETRY_MS);
    }
  }

  /** Schedules, beside the subject triggers and like them once the streams exist; tried again until it works. */
  private async startSchedules(): Promise<void> {
    try {
      const schedules = await Schedules.open(this.nc, await InvocationRecords.open(this.nc), this.log);
      await schedules.start();
      if (this.stopping) return void (await schedules.stop());
      this.schedules = schedules;
    } catch (err) {
      if (this.stopping) return;
      this.log.error({ err }, `cannot read the schedules; trying again in ${EVENTS_RETRY_MS} ms`);
      this.schedulesRetry = setTimeout(() => void this.startSchedules(), EVENTS_RETRY_MS);
    }
  }

  /** Current node table (live nodes only). */
  nodes(now = Date.now()): NodeTable {
    return this.directory.nodes(now);
  }

  private serve(sub: Subscription, handle: (m: Msg) => void): void {
    this.subs.push(sub);
    this.loops.push(
      (async () => {
        for await (const m of sub) {
          try {
            handle(m);
          } catch (err) {
            this.log.warn({ err, subject: m.subject }, 'message rejected');
          }
        }
      })(),
    );
  }

  private onNodesList(m: Msg): void {
    m.respond(encodeJson(nodeTableSchema, { type: 'nodes', version: PROTOCOL_VERSION, nodes: toEntries(this.nodes()) }));
  }

  private onInvoke(m: Msg): void {
    let callId = 'unknown';
    try {
      const inv = decodeInvocation(m.headers);
      callId = inv.callId;
      if (remainingMs(inv.deadline) === 0) throw new SkiffError('SKIFF_DEADLINE_EXCEEDED', 'the deadline passed before the invocation was placed');
      const target = { fn: inv.fn, fnVersion: inv.fnVersion, image: inv.image };
      const node = this.directory.pick(target);
      if (!node) throw new SkiffError('SKIFF_NO_WORKER', 'no worker node is available to run the function');
      this.directory.placed(node.nodeId, target);
      m.respond(EMPTY, { headers: encodePlacedHeaders(callId, node.nodeId) });
      this.log.debug({ callId, fn: inv.fn, nodeId: node.nodeId }, 'placed');
    } catch (err) {
      const e = err instanceof SkiffError ? err : new SkiffError('SKIFF_INTERNAL', 'placement failed', { cause: err });
      this.log.warn({ callId, code: e.code, err: e.message }, 'invocation not placed');
      m.respond(encodeError(e), { headers: encodeResultHeaders(callId === 'unknown' ? '0' : callId, false) });
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.eventsRetry);
    clearTimeout(this.schedulesRetry);
    await this.schedules?.stop();
    await this.triggers?.stop();
    await this.delivery?.stop();
    this.directory.stop();
    for (const s of this.subs) await s.drain();
    await Promise.all(this.loops);
  }
}
