import { hostname } from 'node:os';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { PROTOCOL_VERSION, QUEUE_GROUPS, SUBJECTS, SkiffError, decodeInvocation, encodeError, encodeJson, encodePlacedHeaders, encodeResultHeaders, healthAnswerSchema, nodeTableSchema, remainingMs } from '@skiff/contracts';
import type { ConsumerMessages } from '@nats-io/jetstream';
import { AsyncQueue, DeadLetters, InvocationRecords, OutcomeOutbox, ensureEventStreams, watchTriggers } from '@skiff/events';
import { NodeDirectory, toEntries, type NodeTable } from '@skiff/placement';
import { untilItWorks, type Logger, type Retrying } from '@skiff/service-kit';
import type { SchedulerConfig } from './config.js';
import { AsyncDelivery } from './delivery.js';
import { AsyncMetrics } from './async-metrics.js';
import { DestinationMetrics } from './destination-metrics.js';
import { NodeCalls } from './node-calls.js';
import { OutcomeSender } from './outcome-sender.js';
import { Schedules } from './schedules.js';
import { SubjectTriggers } from './triggers.js';
import { DurableTriggers } from './durable-triggers.js';

/**
 * How long an invocation taken by a scheduler that died waits before JetStream offers it again;
 * a live one extends it with working() every third of it while a call runs.
 */
const ACK_WAIT_MS = 10_000;
/** While JetStream cannot be set up (not enabled, or unreachable), it is tried again this often. */
const EVENTS_RETRY_MS = 5000;

const EMPTY = new Uint8Array(0);
/** How this scheduler is named in health answers. */
const SCHEDULER_ID = `${hostname()}:${process.pid}`;

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
  private readonly metrics: AsyncMetrics;
  private readonly subs: Subscription[] = [];
  private readonly loops: Promise<void>[] = [];
  private delivery: AsyncDelivery | undefined;
  private triggers: { subject: SubjectTriggers; durable: DurableTriggers; schedules: Schedules; watcher: ConsumerMessages } | undefined;
  private outcomes: OutcomeSender | undefined;
  /** Setting up async delivery, then the triggers: each tried again until it works. */
  private setups: Retrying[] = [];
  private stopping = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly config: SchedulerConfig,
    private readonly log: Logger,
  ) {
    this.directory = new NodeDirectory(nc, { missedHeartbeats: config.missedHeartbeats, log, announce: true });
    this.calls = new NodeCalls(nc, this.directory);
    this.metrics = new AsyncMetrics(nc, config.eventLimits.maxDeadLetters);
  }

  start(): void {
    this.directory.start();
    this.serve(this.nc.subscribe(SUBJECTS.invoke, { queue: QUEUE_GROUPS.schedulers }), (m) => this.onInvoke(m));
    this.serve(this.nc.subscribe(SUBJECTS.nodesList, { queue: QUEUE_GROUPS.schedulers }), (m) => this.onNodesList(m));
    this.serve(this.nc.subscribe(SUBJECTS.health), (m) => this.onHealth(m));
    this.setups.push(untilItWorks(() => this.startDelivery(), EVENTS_RETRY_MS, (err, ms) => this.log.error({ err }, `cannot set up JetStream for async invocations; trying again in ${ms} ms`)));
  }

  /** Async delivery, once JetStream has its streams; sync placement does not wait for it. */
  private async startDelivery(): Promise<void> {
    await ensureEventStreams(this.nc, this.config.eventLimits);
    // Kept across a retry of the rest: one sender per scheduler.
    if (!this.outcomes) {
      const outcomes = new OutcomeSender(this.nc, this.config.outcomeSender, new DestinationMetrics(), this.log);
      await outcomes.start();
      if (this.stopping) return void (await outcomes.stop());
      this.outcomes = outcomes;
    }
    const records = await InvocationRecords.open(this.nc);
    const delivery = new AsyncDelivery(this.nc, this.directory, this.calls, records, await DeadLetters.open(this.nc), OutcomeOutbox.open(this.nc), { maxInFlight: this.config.asyncMaxInFlight, ackWaitMs: ACK_WAIT_MS }, this.metrics, this.log);
    await delivery.start();
    if (this.stopping) return void (await delivery.stop());
    this.delivery = delivery;
    this.metrics.start();
    this.log.info('delivering async invocations and their outcomes');
    this.setups.push(untilItWorks(() => this.startTriggers(records), EVENTS_RETRY_MS, (err, ms) => this.log.error({ err }, `cannot read the trigger entries; trying again in ${ms} ms`)));
  }

  /**
   * Subject triggers, plain and durable, and schedules, once the streams exist (startDelivery
   * made them): all follow every function's trigger entry.
   */
  private async startTriggers(records: InvocationRecords): Promise<void> {
    const subject = new SubjectTriggers(this.nc, this.directory, this.calls, { maxBodyBytes: this.config.maxBodyBytes, maxInFlight: this.config.triggerMaxInFlight }, this.log);
    const durable = new DurableTriggers(this.nc, new AsyncQueue(this.nc), records, this.log);
    const schedules = await Schedules.open(this.nc, records, this.log);
    const watcher = await watchTriggers(
      this.nc,
      (fn, entry) => (subject.update(fn, entry), durable.update(fn, entry), schedules.update(fn, entry)),
      (from, err) => this.log.warn({ subject: from, err }, 'trigger entry rejected'),
    );
    this.triggers = { subject, durable, schedules, watcher };
    if (this.stopping) await this.stopTriggers();
  }

  private async stopTriggers(): Promise<void> {
    const t = this.triggers;
    this.triggers = undefined;
    if (!t) return;
    await t.watcher.close();
    t.subject.stop();
    await t.durable.stop();
    await t.schedules.stop();
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

  /** Every scheduler answers, so the asker counts them. */
  private onHealth(m: Msg): void {
    const problems = !this.delivery ? ['async delivery is not set up yet (JetStream)'] : !this.triggers ? ['subject triggers and schedules are not set up yet'] : [];
    m.respond(encodeJson(healthAnswerSchema, { type: 'health', version: PROTOCOL_VERSION, role: 'scheduler', id: SCHEDULER_ID, problems }));
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
    for (const setup of this.setups) setup.cancel();
    await this.stopTriggers();
    await this.delivery?.stop();
    await this.outcomes?.stop();
    this.metrics.stop();
    this.directory.stop();
    for (const s of this.subs) await s.drain();
    await Promise.all(this.loops);
  }
}
