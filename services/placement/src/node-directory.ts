import type { Msg, NatsConnection, Subscription } from '@nats-io/nats-core';
import type { Logger } from '@skiff/service-kit';
import { SUBJECTS, decodeJson, heartbeatSchema, leaveSchema } from '@skiff/contracts';
import { pickNode, withHeartbeat, withPlaced, withoutExpired, withoutNode, type NodeState, type NodeTable, type PlacementTarget } from './placement.js';

const SWEEP_MS = 250;
/** Lost nodes remembered (oldest forgotten first), so a late word about one is recognised. */
const LOST_REMEMBERED = 1024;

/** A node is dropped after this many of its promised heartbeats are missed, unless configured. */
export const DEFAULT_MISSED_HEARTBEATS = 3;

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
  private readonly watchers: ((nodeId: string, change: NodeChange) => void)[] = [];
  /** Nodes lost and not back since, in the order they were lost. */
  private readonly lost = new Set<string>();

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
    this.markLost(nodeId);
  }

  /** Whether the node was lost (silent, or nothing listening) and has not beaten since. */
  wasLost(nodeId: string): boolean {
    return this.lost.has(nodeId);
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
    const live = withoutExpired(this.table, Date.now(), this.opts.missedHeartbeats);
    if (live.size === this.table.size) return;
    const gone = [...this.table.keys()].filter((id) => !live.has(id));
    this.table = live;
    for (const id of gone) {
      this.say({ nodeId: id }, 'node missed its heartbeats; removed');
      this.markLost(id);
    }
  }

  private markLost(nodeId: string): void {
    this.lost.delete(nodeId);
    this.lost.add(nodeId);
    if (this.lost.size > LOST_REMEMBERED) this.lost.delete(this.lost.values().next().value!);
    this.changed(nodeId, 'lost');
  }

  private onHeartbeat(m: Msg): void {
    const hb = decodeJson(heartbeatSchema, m.data, 'heartbeat');
    const joined = !this.table.has(hb.nodeId);
    this.table = withHeartbeat(this.table, hb, Date.now());
    if (!joined) return;
    this.lost.delete(hb.nodeId);
    this.say({ nodeId: hb.nodeId, slots: hb.slots }, 'node joined');
    this.changed(hb.nodeId, 'joined');
  }

  private onLeave(m: Msg): void {
    const leave = decodeJson(leaveSchema, m.data, 'leave');
    if (!this.table.has(leave.nodeId)) return;
    this.table = withoutNode(this.table, leave.nodeId);
    this.say({ nodeId: leave.nodeId }, 'node left');
    this.changed(leave.nodeId, 'left');
  }
}
