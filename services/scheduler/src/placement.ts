/**
 * The node table and placement as pure functions over a snapshot: no clocks, no I/O, so every
 * rule is unit-tested directly. The Scheduler class holds the table and does the messaging.
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
}

export type NodeTable = ReadonlyMap<string, NodeState>;

export function withHeartbeat(table: NodeTable, hb: Heartbeat, now: number): Map<string, NodeState> {
  const next = new Map(table);
  next.set(hb.nodeId, { nodeId: hb.nodeId, lastSeen: now, slots: hb.slots, inflight: hb.inflight, intervalMs: hb.intervalMs });
  return next;
}

export function withoutNode(table: NodeTable, nodeId: string): Map<string, NodeState> {
  const next = new Map(table);
  next.delete(nodeId);
  return next;
}

/** Counts one more invocation on a node until its next heartbeat reports the truth. */
export function withPlaced(table: NodeTable, nodeId: string): Map<string, NodeState> {
  const next = new Map(table);
  const node = next.get(nodeId);
  if (node) next.set(nodeId, { ...node, inflight: node.inflight + 1 });
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
  return node.slots === 0 ? Number.POSITIVE_INFINITY : node.inflight / node.slots;
}

/**
 * The live node with the most room, by share of its slots in use; ties go to the fewest
 * invocations in flight, then to the node id, so the choice is deterministic. Nodes that are
 * full still take work (they queue it) until backpressure exists at this level.
 */
export function pickNode(table: NodeTable, now: number, missedHeartbeats: number): NodeState | undefined {
  let best: NodeState | undefined;
  for (const node of table.values()) {
    if (!isLive(node, now, missedHeartbeats) || node.slots === 0) continue;
    if (!best || load(node) < load(best) || (load(node) === load(best) && (node.inflight < best.inflight || (node.inflight === best.inflight && node.nodeId < best.nodeId)))) {
      best = node;
    }
  }
  return best;
}

export function toEntries(table: NodeTable): NodeEntry[] {
  return [...table.values()]
    .map(({ nodeId, lastSeen, slots, inflight }) => ({ nodeId, lastSeen, slots, inflight }))
    .sort((a, b) => a.nodeId.localeCompare(b.nodeId));
}
