import { describe, expect, it } from 'vitest';
import { SkiffError } from '@skiff/contracts';
import { Slots } from './slots.js';

const later = (ms: number) => Date.now() + ms;

describe('Slots', () => {
  it('runs up to its size at once and hands a freed slot to the first waiter', async () => {
    const s = new Slots(2, 10);
    const a = await s.acquire(later(1000));
    await s.acquire(later(1000));
    const order: string[] = [];
    const c = s.acquire(later(1000)).then((r) => (order.push('c'), r));
    const d = s.acquire(later(1000)).then((r) => (order.push('d'), r));
    expect([s.inUse, s.waiting]).toEqual([2, 2]);
    a();
    a(); // a second release of the same slot is ignored
    (await c)();
    await d;
    expect(order).toEqual(['c', 'd']);
    expect([s.inUse, s.waiting]).toEqual([2, 0]);
  });

  it('refuses at once when the queue is full', async () => {
    const s = new Slots(1, 1);
    await s.acquire(later(1000));
    const queued = s.acquire(later(1000));
    await expect(s.acquire(later(1000))).rejects.toMatchObject({ code: 'SKIFF_OVERLOADED' });
    queued.catch(() => {});
  });

  it('gives up on a waiter at its deadline and leaves the queue clean', async () => {
    const s = new Slots(1, 5);
    const release = await s.acquire(later(1000));
    const err = await s.acquire(later(30)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SkiffError);
    expect((err as SkiffError).code).toBe('SKIFF_NO_CAPACITY');
    expect(s.waiting).toBe(0);
    release();
    expect(s.inUse).toBe(0);
  });
});
