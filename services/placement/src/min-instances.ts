/**
 * Keeping stream functions at their minInstances, as a pure decision over the node table: which
 * versions have fewer instances than their minimum on the live nodes, and which node to ask for
 * them. The gateway's Prewarmer reads the registry, keeps what it asked and sends the requests.
 */
import type { FunctionMode } from '@skiff/contracts';
import { isLive, pickNode, warmKey, type NodeState, type NodeTable, type PlacementTarget } from './placement.js';

/** The current version of a deployed function, as far as its minimum is concerned. */
export interface MinInstancesTarget extends PlacementTarget {
  mode: FunctionMode;
  minInstances: number;
}

export interface WarmOrder<T extends MinInstancesTarget = MinInstancesTarget> {
  target: T;
  nodeId: string;
  /** Instances of the version on live nodes now (fewer than its minInstances). */
  present: number;
}

export interface WarmPlan<T extends MinInstancesTarget = MinInstancesTarget> {
  orders: WarmOrder<T>[];
  /** Versions short of their minimum with no live node to ask. */
  stranded: T[];
}

/** Instances of a version on live nodes, busy and starting ones included. */
export function instancesOf(table: NodeTable, fn: string, version: number, now: number, missedHeartbeats: number): number {
  const key = warmKey(fn, version);
  let n = 0;
  for (const node of table.values()) if (isLive(node, now, missedHeartbeats)) n += node.instances.get(key) ?? 0;
  return n;
}

function usable(node: NodeState | undefined, now: number, missedHeartbeats: number): node is NodeState {
  return node !== undefined && node.slots > 0 && isLive(node, now, missedHeartbeats);
}

/**
 * What to warm: each stream version with minInstances > 0 whose instances on the live nodes fall
 * short of it goes to one node. A node asked keeps at least minInstances of the version itself,
 * so one is enough. That is the node asked before (`asked`, node id by `fn@version`) while it is
 * live, so rounds that come before its heartbeat shows the new instances do not spread the
 * version over more nodes; otherwise placement's pick. Only the targets given are considered:
 * the caller passes current versions of existing functions, so nothing else is ever warmed.
 */
export function planWarm<T extends MinInstancesTarget>(
  table: NodeTable,
  targets: readonly T[],
  now: number,
  missedHeartbeats: number,
  asked: ReadonlyMap<string, string> = new Map(),
): WarmPlan<T> {
  const plan: WarmPlan<T> = { orders: [], stranded: [] };
  for (const target of targets) {
    if (target.mode !== 'stream' || target.minInstances <= 0) continue;
    const present = instancesOf(table, target.fn, target.fnVersion, now, missedHeartbeats);
    if (present >= target.minInstances) continue;
    const before = asked.get(warmKey(target.fn, target.fnVersion));
    const sticky = before === undefined ? undefined : table.get(before);
    const node = usable(sticky, now, missedHeartbeats) ? sticky : pickNode(table, now, missedHeartbeats, target);
    if (node) plan.orders.push({ target, nodeId: node.nodeId, present });
    else plan.stranded.push(target);
  }
  return plan;
}
