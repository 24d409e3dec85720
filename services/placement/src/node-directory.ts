import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import type { Logger } from '@skiff/service-kit';
import { SUBJECTS, decodeJson, heartbeatSchema, leaveSchema } from '@skiff/contracts';
import { pickNode, withHeartbeat, withPlaced, withoutExpired, withoutNode, type NodeState, type NodeTable, type PlacementTarget } from './placement.js';

const SWEEP_MS = 250;
/** A sweep this late means this process's own event loop was held: the silence may be ours. */
const LATE_SWEEP_MS = 4 * SWEEP_MS;
/** Draining nodes watched at most (heartbeats come from workers only, but every table is bounded). */
const DRAINING_WATCHED = 1024;

/** A node is dropped after this many of its promised heartbeats are missed, unless configured. */
export const DEFAULT_MISSED_HEARTBEATS = 2;

/** SKIFF_MISSED_HEARTBEATS, checked the same way by every service that places invocations. */
export function missedHeartbeatsFrom(raw: string | undefined): number {
  if (raw === undefined || raw === '') return DEFAULT_MISSED_HEARTBEATS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 100) throw new Error(`SKIFF_MISSED_HEARTBEATS must be an integer from 1 to 100, got "${raw}"`);
  return n;
}

/**
 * A node came into the table (its first heartbeat) or went out of it: `left` when it said it
 * was leaving (it finishes the calls it has), `lost` when it went silent (missed heartbeats) or
 * nothing listens on its subject any more (its calls will never be answered).
 */
export type NodeChange = 'joined' | 'left' | 'lost';

export interface NodeDirectoryOptions {
  missedHeartbeats: number;
  log: Logger;
  /** Log joins, leaves and expiries at info (the scheduler) rather than debug (the gateways). */
  announce?: boolean;
}

/**
 * The live node table as one process sees it, kept from worker heartbeats and leave messages,
 * with placement over it. Every process that places invocations (schedulers, gateways) keeps
 * its own; in-flight counts are local estimates until the node's next heartbeat.
 */
export class NodeDirectory {
  private table: NodeTable = new Map();
  private readonly subs: Subscription[] = [];
  private sweeper: NodeJS.Timeout | undefined;
  private lastSweep = Date.now();
  private readonly watchers: ((nodeId: string, change: NodeChange) => void)[] = [];
  /** Nodes that left and still finish calls: out of placement, but lost when they go silent. */
  private readonly draining = new Map<string, { lastSeen: number; intervalMs: number }>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: NodeDirectoryOptions,
  ) {}

  start(): void {
    this.follow(SUBJECTS.heartbeat, (m) => this.onHeartbeat(m));
    this.follow(SUBJECTS.leave, (m) => this.onLeave(m));
    // After subscribing (NATS keeps a connection's order): every answer is heard.
    this.nc.publish(SUBJECTS.rollCall);
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS);
    this.sweeper.unref();
  }

  /** Live nodes now. */
  nodes(now = Date.now()): NodeTable {
    this.table = withoutExpired(this.table, now, this.opts.missedHeartbeats);
    return this.table;
  }

  /** The best node for the target (see pickNode), or none when no live node has slots. */
  pick(target: PlacementTarget, now = Date.now()): NodeState | undefined {
    return pickNode(this.table, now, this.opts.missedHeartbeats, target);
  }

  /** Counts an invocation sent to the node until its next heartbeat says how busy it is. */
  placed(nodeId: string, target: PlacementTarget): void {
    this.table = withPlaced(this.table, nodeId, target);
  }

  /** Drops a node known to be gone (nothing listens on its subject); a heartbeat brings it back. */
  forget(nodeId: string, why: string): void {
    if (!this.table.has(nodeId)) return;
    this.table = withoutNode(this.table, nodeId);
    this.say({ nodeId, why }, 'node dropped');
    this.changed(nodeId, 'lost');
  }

  /** Calls `watcher` after each node that joins or leaves the table, with the table updated. */
  watch(watcher: (nodeId: string, change: NodeChange) => void): void {
    this.watchers.push(watcher);
  }

  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const s of this.subs) s.unsubscribe();
  }

  private follow(subject: string, handle: (m: Msg) => void): void {
    const log = this.opts.log;
    this.subs.push(
      this.nc.subscribe(subject, {
        callback: (err, m) => {
          if (err) return log.warn({ err, subject }, 'subscription failed');
          try {
            handle(m);
          } catch (e) {
            log.warn({ err: e, subject }, 'message rejected');
          }
        },
      }),
    );
  }

  private say(fields: object, msg: string): void {
    if (this.opts.announce) this.opts.log.info(fields, msg);
    else this.opts.log.debug(fields, msg);
  }

  private changed(nodeId: string, change: NodeChange): void {
    for (const w of this.watchers) {
      try {
        w(nodeId, change);
      } catch (err) {
        this.opts.log.warn({ err, nodeId, change }, 'node change watcher failed');
      }
    }
  }

  private sweep(): void {
    const now = Date.now();
    const late = now - this.lastSweep > LATE_SWEEP_MS;
    this.lastSweep = now;
    // Timers run before I/O: heartbeats that arrived while the loop was held are not read yet.
    if (late) return;
    const overdue = (seen: { lastSeen: number; intervalMs: number }) => now - seen.lastSeen > seen.intervalMs * this.opts.missedHeartbeats;
    for (const [id, seen] of this.draining) {
      if (!overdue(seen)) continue;
      this.draining.delete(id);
      this.say({ nodeId: id }, 'draining node missed its heartbeats; its calls are lost');
      this.changed(id, 'lost');
    }
    const live = withoutExpired(this.table, now, this.opts.missedHeartbeats);
    if (live.size === this.table.size) return;
    const gone = [...this.table.keys()].filter((id) => !live.has(id));
    this.table = live;
    for (const id of gone) {
      this.say({ nodeId: id }, 'node missed its heartbeats; removed');
      this.changed(id, 'lost');
    }
  }

  private onHeartbeat(m: Msg): void {
    const hb = decodeJson(heartbeatSchema, m.data, 'heartbeat');
    if (hb.draining) return this.onDraining(hb.nodeId, hb.inflight, hb.intervalMs);
    this.draining.delete(hb.nodeId); // back, as a new process with the same id
    const joined = !this.table.has(hb.nodeId);
    this.table = withHeartbeat(this.table, hb, Date.now());
    if (!joined) return;
    this.say({ nodeId: hb.nodeId, slots: hb.slots }, 'node joined');
    this.changed(hb.nodeId, 'joined');
  }

  private onLeave(m: Msg): void {
    const { nodeId } = decodeJson(leaveSchema, m.data, 'leave');
    const node = this.table.get(nodeId);
    if (!node) return;
    // Watched from now: a node killed before its first draining heartbeat is lost all the same.
    this.watchDraining(nodeId, node.intervalMs);
    this.leave(nodeId);
  }

  private leave(nodeId: string): void {
    if (!this.table.has(nodeId)) return;
    this.table = withoutNode(this.table, nodeId);
    this.say({ nodeId }, 'node left');
    this.changed(nodeId, 'left');
  }

  /** A heartbeat of a node that left: watched until it is done (`inflight` 0) or goes silent. */
  private onDraining(nodeId: string, inflight: number, intervalMs: number): void {
    this.leave(nodeId); // its leave message may not have come
    if (inflight === 0) this.draining.delete(nodeId);
    else this.watchDraining(nodeId, intervalMs);
  }

  private watchDraining(nodeId: string, intervalMs: number): void {
    if (this.draining.has(nodeId) || this.draining.size < DRAINING_WATCHED) this.draining.set(nodeId, { lastSeen: Date.now(), intervalMs });
  }
}
