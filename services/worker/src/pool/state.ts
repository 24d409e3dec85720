/**
 * Warm instances of one function version: their states and every decision about them, as pure
 * functions over a snapshot. FunctionPool holds the instances and does the I/O.
 *
 *   starting ──ready──▶ idle ◀──done (none left)── busy
 *      │                 │  └──────take──────────▶  │ ◀─take/done─┐
 *      │                 │                          └─────────────┘
 *      │               drain/expire                drain
 *      ▼                 ▼                          ▼
 *   stopped ◀──exit── draining ◀────────────────────┘
 *   (a crash or a failed start goes straight to stopped from any state)
 */

export type InstanceState = 'starting' | 'idle' | 'busy' | 'draining' | 'stopped';
export type InstanceEvent = 'ready' | 'take' | 'done' | 'drain' | 'exit';

export interface InstanceView {
  id: string;
  state: InstanceState;
  /** Invocations running on it now. */
  inflight: number;
  /** When it last finished an invocation (or became ready), ms. */
  lastUsedAt: number;
}

export interface PoolSettings {
  /** Invocations one instance serves at once. */
  concurrency: number;
  minInstances: number;
  maxInstances: number;
  /** An idle instance above minInstances stops after this long unused. */
  idleTimeoutMs: number;
}

/** The state an instance moves to on an event; an event that makes no sense there is a bug. */
export function transition(from: InstanceState, event: InstanceEvent, inflightAfter = 0): InstanceState {
  if (event === 'exit') return 'stopped';
  switch (from) {
    case 'starting':
      if (event === 'ready') return 'idle';
      if (event === 'drain') return 'draining';
      break;
    case 'idle':
      if (event === 'take') return 'busy';
      if (event === 'drain') return 'draining';
      break;
    case 'busy':
      if (event === 'take') return 'busy';
      if (event === 'done') return inflightAfter === 0 ? 'idle' : 'busy';
      if (event === 'drain') return 'draining';
      break;
    case 'draining':
      if (event === 'done') return 'draining';
      break;
    case 'stopped':
      break;
  }
  throw new Error(`instance cannot go from ${from} on ${event}`);
}

/**
 * The instance to run the next invocation on: one with room, preferring the one with most work
 * already (packs invocations so other instances go idle and can be stopped), then the most
 * recently used (warmest caches).
 */
export function pickInstance(instances: readonly InstanceView[], concurrency: number): InstanceView | undefined {
  let best: InstanceView | undefined;
  for (const i of instances) {
    if ((i.state !== 'idle' && i.state !== 'busy') || i.inflight >= concurrency) continue;
    if (!best || i.inflight > best.inflight || (i.inflight === best.inflight && i.lastUsedAt > best.lastUsedAt)) best = i;
  }
  return best;
}

/** Instances that count against maxInstances: all but those stopped. */
export function liveCount(instances: readonly InstanceView[]): number {
  return instances.filter((i) => i.state !== 'stopped').length;
}

/**
 * How many instances to start now, for `waiting` invocations that found no room: one start
 * per need not already covered by instances on their way up, within maxInstances and what
 * the node has room for.
 */
export function startsNeeded(instances: readonly InstanceView[], waiting: number, s: PoolSettings, nodeRoom: number): number {
  const comingUp = instances.filter((i) => i.state === 'starting').length * s.concurrency;
  const uncovered = Math.max(0, waiting - comingUp);
  const wanted = Math.ceil(uncovered / s.concurrency);
  const forMinimum = Math.max(0, s.minInstances - liveCount(instances));
  return Math.max(0, Math.min(Math.max(wanted, forMinimum), s.maxInstances - liveCount(instances), nodeRoom));
}

/** Idle instances unused for longer than the idle timeout, oldest first, keeping minInstances. */
export function expiredIdle(instances: readonly InstanceView[], now: number, s: PoolSettings): InstanceView[] {
  const spare = liveCount(instances) - s.minInstances;
  if (spare <= 0) return [];
  return instances
    .filter((i) => i.state === 'idle' && now - i.lastUsedAt >= s.idleTimeoutMs)
    .sort((a, b) => a.lastUsedAt - b.lastUsedAt)
    .slice(0, spare);
}
