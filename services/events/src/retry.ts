import type { ErrorCode } from '@skiff/contracts';

/**
 * Failures an async invocation is attempted again after: the function failed or ran out of
 * time or memory, or there was no room, no worker or no connection. Every other code (a body
 * the function cannot take, a missing image, a bad message) would fail again the same way.
 */
const RETRIED: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'SKIFF_FN_FAILED',
  'SKIFF_DEADLINE_EXCEEDED',
  'SKIFF_OUT_OF_MEMORY',
  'SKIFF_TOO_MANY_PROCESSES',
  'SKIFF_FN_OUTPUT_TOO_LARGE',
  'SKIFF_CONTAINER_FAILED',
  'SKIFF_NO_WORKER',
  'SKIFF_WORKER_LOST',
  'SKIFF_OVERLOADED',
  'SKIFF_NO_CAPACITY',
  'SKIFF_NATS_UNAVAILABLE',
  'SKIFF_INTERNAL',
]);

export function isRetried(code: ErrorCode): boolean {
  return RETRIED.has(code);
}

/** The wait before attempt `next` (2, 3, …): `baseMs`, doubled per attempt since, at most `capMs`. */
export function backoffMs(next: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, next - 2));
}
