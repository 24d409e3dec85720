import { describe, expect, it } from 'vitest';
import { backoffMs, isRetried } from './retry.js';

describe('async retries', () => {
  it('wait the base before the second attempt, double it for each further one, up to the cap', () => {
    expect([2, 3, 4, 5, 6].map((n) => backoffMs(n, 100, 1000))).toEqual([100, 200, 400, 800, 1000]);
  });

  it('retry what may pass on another attempt, and not what would fail the same way', () => {
    for (const code of ['SKIFF_FN_FAILED', 'SKIFF_DEADLINE_EXCEEDED', 'SKIFF_NO_WORKER', 'SKIFF_WORKER_LOST', 'SKIFF_OVERLOADED', 'SKIFF_NO_CAPACITY'] as const) expect(isRetried(code), code).toBe(true);
    for (const code of ['SKIFF_VALIDATION_FAILED', 'SKIFF_BODY_TOO_LARGE', 'SKIFF_UNSUPPORTED_MEDIA_TYPE', 'SKIFF_IMAGE_NOT_FOUND', 'SKIFF_BAD_MESSAGE'] as const) expect(isRetried(code), code).toBe(false);
  });
});
