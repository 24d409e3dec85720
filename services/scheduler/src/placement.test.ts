import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, type Heartbeat } from '@skiff/contracts';
import { isLive, pickNode, toEntries, withHeartbeat, withPlaced, withoutExpired, withoutNode, type NodeState } from './placement.js';

const hb = (nodeId: string, inflight = 0, slots = 4): Heartbeat => ({
  type: 'heartbeat',
  version: PROTOCOL_VERSION,
  nodeId,
  sentAt: 0,
  slots,
  inflight,
  intervalMs: 1000,
});

describe('node table', () => {
  it('adds, refreshes and removes nodes without touching the old snapshot', () => {
    const t0 = new Map<string, NodeState>();
    const t1 = withHeartbeat(t0, hb('a'), 100);
    const t2 = withHeartbeat(t1, hb('a', 2), 900);
    expect(t0.size).toBe(0);
    expect(t1.get('a')).toMatchObject({ lastSeen: 100, inflight: 0 });
    expect(t2.get('a')).toMatchObject({ lastSeen: 900, inflight: 2 });
    expect(withoutNode(t2, 'a').size).toBe(0);
  });

  it('expires a node after the promised heartbeats are missed', () => {
    const t = withHeartbeat(new Map(), hb('a'), 0);
    expect(isLive(t.get('a')!, 3000, 3)).toBe(true);
    expect(isLive(t.get('a')!, 3001, 3)).toBe(false);
    expect(withoutExpired(t, 3001, 3).size).toBe(0);
  });

  it('lists entries sorted by node id', () => {
    const t = withHeartbeat(withHeartbeat(new Map(), hb('b'), 5), hb('a'), 6);
    expect(toEntries(t).map((e) => e.nodeId)).toEqual(['a', 'b']);
  });
});

describe('pickNode', () => {
  it('finds nothing in an empty table', () => {
    expect(pickNode(new Map(), 0, 3)).toBeUndefined();
  });

  it('prefers the node with the smallest share of its slots in use', () => {
    let t = withHeartbeat(new Map(), hb('a', 2, 4), 0);
    t = withHeartbeat(t, hb('b', 3, 8), 0);
    expect(pickNode(t, 0, 3)?.nodeId).toBe('b');
  });

  it('skips nodes that stopped sending heartbeats and nodes without slots', () => {
    let t = withHeartbeat(new Map(), hb('a', 0), 0);
    t = withHeartbeat(t, hb('b', 3), 5000);
    t = withHeartbeat(t, hb('c', 0, 0), 5000);
    expect(pickNode(t, 5000, 3)?.nodeId).toBe('b');
  });

  it('counts placements between heartbeats, spreading a burst', () => {
    let t = withHeartbeat(withHeartbeat(new Map(), hb('a'), 0), hb('b'), 0);
    const picks: string[] = [];
    for (let i = 0; i < 4; i++) {
      const n = pickNode(t, 0, 3)!;
      picks.push(n.nodeId);
      t = withPlaced(t, n.nodeId);
    }
    expect(picks).toEqual(['a', 'b', 'a', 'b']);
  });
});
