import { SUBJECTS, encodeInvocation, newCallId } from '@skiff/contracts';
import { planWarm, warmKey, type MinInstancesTarget, type NodeDirectory, type WarmOrder } from '@skiff/placement';
import { type Logger } from '@skiff/service-kit';
import { invocationFor } from './invocation.js';
import type { Messaging } from './messaging.js';
import type { FunctionRecord, Registry } from './registry.js';

export interface PrewarmerOptions {
  /** How often every function's minimum is checked (SKIFF_MIN_INSTANCES_CHECK_MS). */
  periodMs: number;
  missedHeartbeats: number;
}

type Target = MinInstancesTarget & { record: FunctionRecord };

const keyOf = (t: MinInstancesTarget) => warmKey(t.fn, t.fnVersion);

/**
 * Keeps stream functions at their minInstances across the workers. A worker asked for a
 * version's minimum keeps it from then on, but a worker that stops or dies takes its instances
 * with it, and at deploy time there may be no worker yet. So the gateway compares the current
 * version of each function with the instances the workers' heartbeats report (busy ones
 * included) and asks one node, placement's pick, for the missing ones: at once when a version
 * is deployed, when a node joins or leaves the table, and every period. A request means "have
 * at least minInstances", so asking again, or from several gateways, starts nothing more.
 */
export class Prewarmer {
  /** The node asked for each version still short of its minimum, by fn@version. */
  private readonly asked = new Map<string, string>();
  /** Versions short of their minimum with no live node to ask, so that is logged once. */
  private readonly stranded = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private startedAt = 0;

  constructor(
    private readonly messaging: Messaging,
    private readonly nodes: NodeDirectory,
    private readonly registry: Pick<Registry, 'list'>,
    private readonly opts: PrewarmerOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.startedAt = Date.now();
    // Joins and leaves that come together (a sweep, a restart) make one check.
    this.nodes.watch(() => (this.soon ??= setTimeout(() => ((this.soon = undefined), this.checkAll()), 0)));
    this.timer = setInterval(() => this.checkAll(), this.opts.periodMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    clearTimeout(this.soon);
  }

  /** A version was just deployed: nothing of it runs anywhere yet, so its minimum starts now. */
  warm(fn: FunctionRecord): void {
    this.check([fn], false);
  }

  /**
   * Whether the table has heard every live worker: a gateway that just started may not have yet,
   * and asking another node for the instances of one it has not heard would double them. It has
   * once it followed heartbeats as long as a node may stay silent and still count as live.
   */
  private settled(now: number): boolean {
    let longest = 0;
    for (const node of this.nodes.nodes(now).values()) longest = Math.max(longest, node.intervalMs);
    return now - this.startedAt >= longest * this.opts.missedHeartbeats;
  }

  private checkAll(): void {
    if (!this.settled(Date.now())) return;
    try {
      this.check(this.registry.list(), true);
    } catch (err) {
      this.log.warn({ err }, 'could not check minInstances');
    }
  }

  /**
   * Asks for what the functions' current versions miss. `all` says the list is every function,
   * so what is remembered of versions not in it (deleted, replaced) is dropped.
   */
  private check(fns: readonly FunctionRecord[], all: boolean): void {
    if (!this.messaging.connected) return;
    const targets: Target[] = fns.map((f) => ({ fn: f.name, fnVersion: f.version, image: f.imageDigest, mode: f.mode, minInstances: f.minInstances, record: f }));
    const now = Date.now();
    const plan = planWarm(this.nodes.nodes(now), targets, now, this.opts.missedHeartbeats, this.asked);
    const inRound = new Set(targets.map(keyOf));
    const ordered = new Set(plan.orders.map((o) => keyOf(o.target)));
    const stranded = new Set(plan.stranded.map(keyOf));
    // Versions that have their minimum now, or are gone, are forgotten.
    for (const k of this.asked.keys()) if ((all || inRound.has(k)) && !ordered.has(k)) this.asked.delete(k);
    for (const k of this.stranded) if ((all || inRound.has(k)) && !stranded.has(k)) this.stranded.delete(k);
    for (const o of plan.orders) this.ask(o);
    for (const t of plan.stranded) {
      if (this.stranded.has(keyOf(t))) continue;
      this.stranded.add(keyOf(t));
      this.log.info({ fn: t.fn, version: t.fnVersion, minInstances: t.minInstances }, 'no live worker to start minInstances on; they start when one joins');
    }
  }

  private ask({ target, nodeId, present }: WarmOrder<Target>): void {
    const inv = invocationFor(target.record, newCallId());
    this.messaging.nc.publish(SUBJECTS.nodeWarm(nodeId), new Uint8Array(0), { headers: encodeInvocation(inv) });
    const fields = { fn: target.fn, version: target.fnVersion, nodeId, minInstances: target.minInstances, present };
    // Asking the same node again until its heartbeat shows the instances is routine, not news.
    if (this.asked.get(keyOf(target)) === nodeId) return this.log.debug(fields, 'asked the node again for the minimum of instances');
    this.asked.set(keyOf(target), nodeId);
    this.log.info(fields, 'asked a node to start the minimum of instances');
  }
}
