import { describe, expect, it } from 'vitest';
import { expiredIdle, pickInstance, startsNeeded, transition, type InstanceView, type PoolSettings } from './state.js';

const settings: PoolSettings = { concurrency: 2, minInstances: 0, maxInstances: 4, idleTimeoutMs: 1000 };
const inst = (id: string, state: InstanceView['state'], inflight = 0, lastUsedAt = 0): InstanceView => ({ id, state, inflight, lastUsedAt });

describe('transition', () => {
  it('follows the lifecycle', () => {
    expect(transition('starting', 'ready')).toBe('idle');
    expect(transition('idle', 'take')).toBe('busy');
    expect(transition('busy', 'done', 1)).toBe('busy');
    expect(transition('busy', 'done', 0)).toBe('idle');
    expect(transition('busy', 'drain')).toBe('draining');
    expect(transition('draining', 'done')).toBe('draining');
    for (const s of ['starting', 'idle', 'busy', 'draining', 'stopped'] as const) expect(transition(s, 'exit')).toBe('stopped');
  });

  it('refuses events that make no sense', () => {
    expect(() => transition('starting', 'take')).toThrow(/starting on take/);
    expect(() => transition('stopped', 'ready')).toThrow();
    expect(() => transition('draining', 'take')).toThrow();
  });
});

describe('pickInstance', () => {
  it('uses nothing that is not ready or is full', () => {
    expect(pickInstance([inst('a', 'starting'), inst('b', 'busy', 2), inst('c', 'draining')], 2)).toBeUndefined();
  });

  it('packs work onto the busiest instance with room, then the most recently used', () => {
    const pool = [inst('a', 'idle', 0, 50), inst('b', 'busy', 1, 10), inst('c', 'idle', 0, 90)];
    expect(pickInstance(pool, 2)?.id).toBe('b');
    expect(pickInstance(pool, 1)?.id).toBe('c');
  });
});

describe('startsNeeded', () => {
  it('starts one instance per need, counting instances already starting', () => {
    expect(startsNeeded([], 3, settings, 10)).toBe(2); // concurrency 2: 3 waiting need 2
    expect(startsNeeded([inst('a', 'starting')], 3, settings, 10)).toBe(1);
    expect(startsNeeded([inst('a', 'starting')], 2, settings, 10)).toBe(0);
  });

  it('respects maxInstances and the room left on the node', () => {
    const three = [inst('a', 'busy', 2), inst('b', 'busy', 2), inst('c', 'busy', 2)];
    expect(startsNeeded(three, 10, settings, 10)).toBe(1);
    expect(startsNeeded([], 10, settings, 1)).toBe(1);
    expect(startsNeeded([], 10, settings, 0)).toBe(0);
  });

  it('keeps minInstances warm with nothing waiting', () => {
    expect(startsNeeded([inst('a', 'idle')], 0, { ...settings, minInstances: 3 }, 10)).toBe(2);
    expect(startsNeeded([inst('a', 'stopped')], 0, { ...settings, minInstances: 1 }, 10)).toBe(1);
  });
});

describe('expiredIdle', () => {
  it('stops idle instances past the timeout, oldest first, keeping minInstances', () => {
    const pool = [inst('a', 'idle', 0, 100), inst('b', 'idle', 0, 0), inst('c', 'busy', 1, 0), inst('d', 'idle', 0, 1900)];
    expect(expiredIdle(pool, 2000, settings).map((i) => i.id)).toEqual(['b', 'a']);
    expect(expiredIdle(pool, 2000, { ...settings, minInstances: 3 }).map((i) => i.id)).toEqual(['b']);
    expect(expiredIdle(pool, 2000, { ...settings, minInstances: 4 })).toEqual([]);
  });
});
