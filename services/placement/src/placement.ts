/**
 * The node table and placement as pure functions over a snapshot: no clocks, no I/O, so every
 * rule is unit-tested directly. NodeDirectory holds a table and does the messaging.
 */
import type { Heartbeat, NodeEntry } from '@skiff/contracts';

export interface NodeState {
  nodeId: string;
  /** Receiver's clock when the last heartbeat arrived. */
  lastSeen: number;
  slots: number;
  /** As reported, plus what this scheduler placed there since the last heartbeat. */
  inflight: number;
  intervalMs: number;
  images: ReadonlySet<string>;
  /** Idle warm instances by `fn@version`. */
  warm: ReadonlyMap<string, number>;
  /** Instances starting, idle or busy by `fn@version` (what minInstances counts). */
  instances: ReadonlyMap<string, number>;
}

/** What is being placed: the function version and its image. */
export interface PlacementTarget {
  fn: string;
  fnVersion: number;
  image: string;
}

export const warmKey = (fn: string, version: number) => `${fn}@${version}`;

export type NodeTable = ReadonlyMap<string, NodeState>;

export function withHeartbeat(table: NodeTable, hb: Heartbeat, now: number): Map<string, NodeState> {
  const next = new Map(table);
  next.set(hb.nodeId, {
    nodeId: hb.nodeId,
    lastSeen: now,
    slots: hb.slots,
    inflight: hb.inflight,
    intervalMs: hb.intervalMs,
    images: new Set(hb.images),
    warm: new Map(hb.warm.filter((w) => w.idle > 0).map((w) => [warmKey(w.fn, w.version), w.idle])),
    instances: new Map(hb.warm.map((w) => [warmKey(w.fn, w.version), Math.max(w.instances ?? 0, w.idle)] as const).filter(([, n]) => n > 0)),
  });
  return next;
}

export function withoutNode(table: NodeTable, nodeId: string): Map<string, NodeState> {
  const next = new Map(table);
  next.delete(nodeId);
  return next;
}

/**
 * Counts one more invocation on a node, and one warm instance fewer, until its next heartbeat
 * reports the truth.
 */
export function withPlaced(table: NodeTable, nodeId: string, target?: PlacementTarget): Map<string, NodeState> {
  const next = new Map(table);
  const node = next.get(nodeId);
  if (!node) return next;
  let warm = node.warm;
  const key = target && warmKey(target.fn, target.fnVersion);
  if (key && (warm.get(key) ?? 0) > 0) {
    const w = new Map(warm);
    w.set(key, w.get(key)! - 1);
    warm = w;
  }
  next.set(nodeId, { ...node, inflight: node.inflight + 1, warm });
  return next;
}

export function isLive(node: NodeState, now: number, missedHeartbeats: number): boolean {
  return now - node.lastSeen <= node.intervalMs * missedHeartbeats;
}

/** Drops nodes whose heartbeats stopped. */
export function withoutExpired(table: NodeTable, now: number, missedHeartbeats: number): Map<string, NodeState> {
  const next = new Map<string, NodeState>();
  for (const [id, node] of table) if (isLive(node, now, missedHeartbeats)) next.set(id, node);
  return next;
}

function load(node: NodeState): number {
  return node.inflight / node.slots;
}

/** Lower is better: a warm idle instance of this version, then the image already unpacked, then anything. */
function tier(node: NodeState, target: PlacementTarget | undefined): number {
  if (!target) return 2;
  if ((node.warm.get(warmKey(target.fn, target.fnVersion)) ?? 0) > 0) return 0;
  return node.images.has(target.image) ? 1 : 2;
}

/** Why pickNode chose the node, in its own order of preference (for the placement span). */
export function placementReason(node: NodeState, target: PlacementTarget | undefined): 'warm' | 'cached' | 'least loaded' {
  return (['warm', 'cached', 'least loaded'] as const)[tier(node, target)]!;
}

function better(a: NodeState, b: NodeState, target: PlacementTarget | undefined): boolean {
  const room = (n: NodeState) => (n.inflight < n.slots ? 0 : 1);
  return (
    room(a) - room(b) ||
    tier(a, target) - tier(b, target) ||
    load(a) - load(b) ||
    a.inflight - b.inflight ||
    (a.nodeId < b.nodeId ? -1 : 1)
  ) < 0;
}

/**
 * Where to run an invocation: among live nodes, those with a free slot first; among those, a
 * node with an idle warm instance of the version, then one that has the image unpacked, then
 * the least loaded (share of slots in use). The in-flight counts are estimates between
 * heartbeats, so a node that looks full still gets work when all do: the worker queues it and
 * is the one that refuses when it truly has no room.
 */
export function pickNode(table: NodeTable, now: number, missedHeartbeats: number, target?: PlacementTarget): NodeState | undefined {
  let best: NodeState | undefined;
  for (const node of table.values()) {
    if (!isLive(node, now, missedHeartbeats) || node.slots === 0) continue;
    if (!best || better(node, best, target)) best = node;
  }
  return best;
}

export function toEntries(table: NodeTable): NodeEntry[] {
  return [...table.values()]
    .map(({ nodeId, lastSeen, slots, inflight }) => ({ nodeId, lastSeen, slots, inflight }))
    .sort((a, b) => a.nodeId.localeCompare(b.nodeId));
}
