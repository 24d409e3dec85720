import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF, nextAttempt, restartDelayMs } from './supervisor.js';

describe('restart backoff', () => {
  it('waits 0.5 s, then twice as long each time, up to 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 100].map((n) => restartDelayMs(n))).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  it('starts over after a service ran a while, and counts up while it keeps dying', () => {
    expect(nextAttempt(0, 10)).toBe(1);
    expect(nextAttempt(4, 10)).toBe(5);
    expect(nextAttempt(4, DEFAULT_BACKOFF.resetAfterMs)).toBe(1);
  });
});
