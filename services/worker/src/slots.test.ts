import { describe, expect, it } from 'vitest';
import { SkiffError } from '@skiff/contracts';
import { Slots, defaultShare } from './slots.js';

const later = (ms: number) => Date.now() + ms;
const limits = (size: number, maxWaiting: number, perFunction = size, perFunctionWaiting = maxWaiting) => ({ size, maxWaiting, perFunction, perFunctionWaiting });

describe('Slots', () => {
  it('runs up to its size at once and hands a freed slot to the first waiter', async () => {
    const s = new Slots(limits(2, 10));
    const a = await s.acquire('f', later(1000));
    await s.acquire('f', later(1000));
    const order: string[] = [];
    const c = s.acquire('f', later(1000)).then((r) => (order.push('c'), r));
    const d = s.acquire('f', later(1000)).then((r) => (order.push('d'), r));
    expect([s.inUse, s.waiting]).toEqual([2, 2]);
    a();
    a(); // a second release of the same slot is ignored
    (await c)();
    await d;
    expect(order).toEqual(['c', 'd']);
    expect([s.inUse, s.waiting]).toEqual([2, 0]);
  });

  it('refuses at once when the queue is full', async () => {
    const s = new Slots(limits(1, 1));
    await s.acquire('f', later(1000));
    const queued = s.acquire('f', later(1000));
    await expect(s.acquire('g', later(1000))).rejects.toMatchObject({ code: 'SKIFF_OVERLOADED' });
    queued.catch(() => {});
  });

  it('gives up on a waiter at its deadline and leaves the queue clean', async () => {
    const s = new Slots(limits(1, 5));
    const release = await s.acquire('f', later(1000));
    const err = await s.acquire('f', later(30)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SkiffError);
    expect((err as SkiffError).code).toBe('SKIFF_NO_CAPACITY');
    expect(s.waiting).toBe(0);
    release();
    expect(s.inUse).toBe(0);
    expect(s.of('f')).toEqual({ running: 0, waiting: 0 });
  });
});

describe('Slots shared between functions (docs/security.md #27)', () => {
  it('keeps slots beyond one function\'s share free for the others', async () => {
    const s = new Slots(limits(4, 100, 3));
    const busy = await Promise.all([0, 1, 2].map(() => s.acquire('slow', later(5000))));
    const queued = [0, 1, 2, 3, 4].map(() => s.acquire('slow', later(5000)));
    expect(s.of('slow')).toEqual({ running: 3, waiting: 5 });
    // The fourth slot is free although slow has five calls waiting: echo takes it at once.
    const echo = await s.acquire('echo', later(5000));
    expect(s.of('echo')).toEqual({ running: 1, waiting: 0 });
    expect(s.of('slow')).toEqual({ running: 3, waiting: 5 });
    echo();
    for (const r of busy) r();
    await Promise.all(queued.map(async (q) => (await q)()));
    expect([s.inUse, s.waiting]).toEqual([0, 0]);
  });

  it('hands freed slots to waiting functions in turn, not first come first served', async () => {
    const s = new Slots(limits(1, 100, 1));
    const held = await s.acquire('a', later(5000));
    const order: string[] = [];
    // each call runs as soon as it is granted, and frees its slot at once
    const call = (fn: string) => s.acquire(fn, later(5000)).then((release) => (order.push(fn), release()));
    // a queues three calls before b and c queue one each
    const calls = ['a', 'a', 'a', 'b', 'c'].map(call);
    held();
    await Promise.all(calls);
    expect(order).toEqual(['a', 'b', 'c', 'a', 'a']);
  });

  it('refuses a function over its share of the queue while others may still queue', async () => {
    const s = new Slots(limits(1, 4, 1, 2));
    const held = await s.acquire('a', later(5000));
    const queued = [s.acquire('a', later(5000)), s.acquire('a', later(5000))];
    const over = await s.acquire('a', later(5000)).catch((e: unknown) => e);
    expect(over).toMatchObject({ code: 'SKIFF_OVERLOADED' });
    expect((over as Error).message).toContain('function "a"');
    const b = s.acquire('b', later(5000));
    expect(s.of('b')).toEqual({ running: 0, waiting: 1 });
    held();
    await Promise.all([...queued, b].map(async (q) => (await q)()));
    expect([s.inUse, s.waiting]).toEqual([0, 0]);
  });

  it('leaves a quarter of the node (at least one) to other functions by default', () => {
    expect([1, 2, 4, 16, 1024, 0].map(defaultShare)).toEqual([1, 1, 3, 12, 768, 0]);
  });
});
