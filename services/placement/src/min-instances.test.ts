import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, heartbeatSchema, type Heartbeat } from '@skiff/contracts';
import { instancesOf, planWarm, type MinInstancesTarget } from './min-instances.js';
import { withHeartbeat, type NodeTable } from './placement.js';

const IMAGE = `sha256:${'1'.repeat(64)}`;
const MISSED = 3;

const hb = (nodeId: string, warm: Heartbeat['warm'] = [], extra: Partial<Heartbeat> = {}): Heartbeat => ({
  type: 'heartbeat',
  version: PROTOCOL_VERSION,
  nodeId,
  sentAt: 0,
  slots: 4,
  inflight: 0,
  intervalMs: 1000,
  draining: false,
  images: [],
  warm,
  ...extra,
});

const table = (...beats: Heartbeat[]): NodeTable => beats.reduce<NodeTable>((t, b) => withHeartbeat(t, b, 0), new Map());

const target = (fn: string, fnVersion: number, minInstances: number, mode: MinInstancesTarget['mode'] = 'stream'): MinInstancesTarget => ({ fn, fnVersion, image: IMAGE, mode, minInstances });

const orders = (t: NodeTable, targets: MinInstancesTarget[], asked?: Map<string, string>, now = 0) =>
  planWarm(t, targets, now, MISSED, asked).orders.map((o) => [o.target.fn, o.nodeId, o.present]);

describe('instances counted for minInstances', () => {
  it('counts busy and starting instances, not only idle ones', () => {
    const t = table(hb('a', [{ fn: 'f', version: 1, idle: 0, instances: 2 }]), hb('b', [{ fn: 'f', version: 1, idle: 1, instances: 1 }]));
    expect(instancesOf(t, 'f', 1, 0, MISSED)).toBe(3);
  });

  it('reads idle as the count when a worker does not report instances', () => {
    const old = heartbeatSchema.parse({ ...hb('a'), warm: [{ fn: 'f', version: 1, idle: 2 }] });
    expect(instancesOf(table(old), 'f', 1, 0, MISSED)).toBe(2);
  });

  it('ignores other versions and nodes whose heartbeats stopped', () => {
    const t = table(hb('a', [{ fn: 'f', version: 1, idle: 1, instances: 1 }]));
    expect(instancesOf(t, 'f', 2, 0, MISSED)).toBe(0);
    expect(instancesOf(t, 'f', 1, 3001, MISSED)).toBe(0);
  });
});

describe('planWarm', () => {
  it('asks for nothing when every version has its minimum', () => {
    const t = table(hb('a', [{ fn: 'f', version: 1, idle: 0, instances: 2 }]));
    expect(planWarm(t, [target('f', 1, 2)], 0, MISSED)).toEqual({ orders: [], stranded: [] });
  });

  it('asks placement’s pick for a version short of its minimum', () => {
    const t = table(hb('a', [], { inflight: 3 }), hb('b', [{ fn: 'f', version: 1, idle: 1, instances: 1 }]));
    expect(orders(t, [target('f', 1, 2)])).toEqual([['f', 'b', 1]]);
  });

  it('warms again on a node that joined after the one holding the instances went away', () => {
    const before = table(hb('a', [{ fn: 'f', version: 1, idle: 1, instances: 1 }]));
    expect(orders(before, [target('f', 1, 1)])).toEqual([]);
    const after = withHeartbeat(new Map(), hb('b'), 5000);
    expect(orders(after, [target('f', 1, 1)], undefined, 5000)).toEqual([['f', 'b', 0]]);
    // The dead node's last report no longer counts once it is overdue.
    const both = withHeartbeat(before, hb('b'), 5000);
    expect(orders(both, [target('f', 1, 1)], undefined, 5000)).toEqual([['f', 'b', 0]]);
  });

  it('leaves exec functions, minInstances 0 and versions not given alone', () => {
    const t = table(hb('a'));
    expect(orders(t, [target('x', 1, 1, 'exec'), target('y', 1, 0)])).toEqual([]);
    // An old version's instances do not count for the current one.
    const old = table(hb('a', [{ fn: 'f', version: 1, idle: 1, instances: 1 }]));
    expect(orders(old, [target('f', 2, 1)])).toEqual([['f', 'a', 0]]);
  });

  it('asks the node it asked before while that node is live, even if placement would pick another', () => {
    const t = table(hb('a', [], { inflight: 4 }), hb('b'));
    expect(orders(t, [target('f', 1, 1)])).toEqual([['f', 'b', 0]]);
    expect(orders(t, [target('f', 1, 1)], new Map([['f@1', 'a']]))).toEqual([['f', 'a', 0]]);
    expect(orders(t, [target('f', 1, 1)], new Map([['f@1', 'gone']]))).toEqual([['f', 'b', 0]]);
  });

  it('reports versions it cannot place when no node is live', () => {
    const plan = planWarm(new Map(), [target('f', 1, 1)], 0, MISSED);
    expect(plan.orders).toEqual([]);
    expect(plan.stranded.map((s) => s.fn)).toEqual(['f']);
  });
});
