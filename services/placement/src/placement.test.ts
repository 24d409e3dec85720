import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, type Heartbeat } from '@skiff/contracts';
import { isLive, pickNode, toEntries, withHeartbeat, withPlaced, withoutExpired, withoutNode, type NodeState } from './placement.js';

const IMAGE = `sha256:${'1'.repeat(64)}`;
const target = { fn: 'hello', fnVersion: 2, image: IMAGE };

const hb = (nodeId: string, inflight = 0, slots = 4, extra: Partial<Heartbeat> = {}): Heartbeat => ({
  type: 'heartbeat',
  version: PROTOCOL_VERSION,
  nodeId,
  sentAt: 0,
  slots,
  inflight,
  intervalMs: 1000,
  draining: false,
  images: [],
  warm: [],
  ...extra,
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

  it('prefers a node with an idle warm instance of the version, then one with the image, then the least loaded', () => {
    let t = withHeartbeat(new Map(), hb('cold', 0, 8), 0);
    t = withHeartbeat(t, hb('cached', 2, 8, { images: [IMAGE] }), 0);
    t = withHeartbeat(t, hb('warm', 3, 8, { images: [IMAGE], warm: [{ fn: 'hello', version: 2, idle: 1 }] }), 0);
    expect(pickNode(t, 0, 3, target)?.nodeId).toBe('warm');
    // Another version of the function is not warm here.
    expect(pickNode(t, 0, 3, { ...target, fnVersion: 3 })?.nodeId).toBe('cached');
    expect(pickNode(t, 0, 3, { ...target, fnVersion: 3, image: `sha256:${'2'.repeat(64)}` })?.nodeId).toBe('cold');
  });

  it('uses up a warm instance when it places there, so a burst spreads', () => {
    let t = withHeartbeat(new Map(), hb('a', 0, 8, { warm: [{ fn: 'hello', version: 2, idle: 1 }] }), 0);
    t = withHeartbeat(t, hb('b', 0, 8, { images: [IMAGE] }), 0);
    const first = pickNode(t, 0, 3, target)!;
    expect(first.nodeId).toBe('a');
    t = withPlaced(t, first.nodeId, target);
    expect(pickNode(t, 0, 3, target)?.nodeId).toBe('b');
  });

  it('prefers any node with a free slot over a warm one that is full', () => {
    let t = withHeartbeat(new Map(), hb('warm-full', 4, 4, { warm: [{ fn: 'hello', version: 2, idle: 1 }] }), 0);
    t = withHeartbeat(t, hb('cold', 1, 4), 0);
    expect(pickNode(t, 0, 3, target)?.nodeId).toBe('cold');
  });

  it('still places when every node looks full (the worker queues or refuses)', () => {
    const t = withHeartbeat(withHeartbeat(new Map(), hb('a', 9, 4), 0), hb('b', 5, 4), 0);
    expect(pickNode(t, 0, 3, target)?.nodeId).toBe('b');
  });
});

