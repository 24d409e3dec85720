import { SkiffError, remainingMs } from '@skiff/contracts';

/**
 * A waiter gives up this long before its deadline: starting with less time left is unlikely to
 * finish, and the caller hears "no capacity" (retry soon) rather than a deadline it cannot act on.
 */
export const GIVE_UP_MARGIN_MS = 50;

export interface SlotLimits {
  /** Invocations running at once on the node. */
  size: number;
  /** Invocations waiting for a slot on the node, all functions together. */
  maxWaiting: number;
  /** Slots one function may hold at once: below `size`, the rest stay free for other functions. */
  perFunction: number;
  /** Invocations of one function that may wait: one function cannot fill the whole queue. */
  perFunctionWaiting: number;
}

/**
 * One function's default share of `n` (slots or queue places): all but a quarter (at least
 * one), so a busy function always leaves room for the others; with one place there is nothing
 * to share.
 */
export function defaultShare(n: number): number {
  return n <= 1 ? n : n - Math.max(1, Math.floor(n / 4));
}

interface Waiter {
  grant: () => void;
  timer: NodeJS.Timeout;
}

interface FunctionSlots {
  running: number;
  queue: Waiter[];
}

/**
 * How many invocations run at once on this node, shared between functions (docs/security.md
 * #27). A function holds at most `perFunction` slots, so another function finds one free at
 * once unless other functions hold the rest. Each function waits in a queue of its own, and a
 * freed slot goes to the functions in turn (round robin), not to whoever came first: a function
 * with waiters gets one of the next few freed slots however many calls a busy one has queued.
 * Both queues are bounded; a waiter leaves at its deadline. Nothing here is unbounded.
 */
export class Slots {
  private used = 0;
  private waitingCount = 0;
  /** Functions with running or waiting invocations; a function's place in the turn is its place here. */
  private readonly fns = new Map<string, FunctionSlots>();

  constructor(readonly limits: SlotLimits) {}

  get inUse(): number {
    return this.used;
  }

  get waiting(): number {
    return this.waitingCount;
  }

  /** Slots `fn` holds and invocations of it waiting. */
  of(fn: string): { running: number; waiting: number } {
    const f = this.fns.get(fn);
    return { running: f?.running ?? 0, waiting: f?.queue.length ?? 0 };
  }

  /** Resolves with a release function once a slot is held for `fn`. */
  acquire(fn: string, deadline: number): Promise<() => void> {
    const f = this.fns.get(fn) ?? { running: 0, queue: [] };
    this.fns.set(fn, f);
    if (this.used < this.limits.size && f.running < this.limits.perFunction) {
      this.take(f);
      return Promise.resolve(this.releaser(fn, f));
    }
    if (this.waitingCount >= this.limits.maxWaiting) {
      this.forgetIfIdle(fn, f);
      return Promise.reject(new SkiffError('SKIFF_OVERLOADED', `the node is running ${this.used} invocations and ${this.waitingCount} more are waiting`));
    }
    if (f.queue.length >= this.limits.perFunctionWaiting) {
      this.forgetIfIdle(fn, f);
      return Promise.reject(new SkiffError('SKIFF_OVERLOADED', `function "${fn}" has ${f.running} invocations running on the node and ${f.queue.length} more waiting`));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          resolve(this.releaser(fn, f));
        },
        timer: setTimeout(() => {
          f.queue.splice(f.queue.indexOf(waiter), 1);
          this.waitingCount--;
          this.forgetIfIdle(fn, f);
          reject(new SkiffError('SKIFF_NO_CAPACITY', 'no slot freed up on the node before the deadline'));
        }, Math.max(0, remainingMs(deadline) - GIVE_UP_MARGIN_MS)),
      };
      f.queue.push(waiter);
      this.waitingCount++;
    });
  }

  private take(f: FunctionSlots): void {
    this.used++;
    f.running++;
  }

  private releaser(fn: string, f: FunctionSlots): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used--;
      f.running--;
      this.forgetIfIdle(fn, f);
      this.dispatch();
    };
  }

  /** Hands free slots to waiters, one function after another, skipping those at their share. */
  private dispatch(): void {
    while (this.used < this.limits.size && this.waitingCount > 0) {
      const next = [...this.fns].find(([, f]) => f.queue.length > 0 && f.running < this.limits.perFunction);
      if (!next) return;
      const [fn, f] = next;
      const waiter = f.queue.shift()!;
      this.waitingCount--;
      this.take(f);
      // Served: to the back of the turn.
      this.fns.delete(fn);
      this.fns.set(fn, f);
      waiter.grant();
    }
  }

  private forgetIfIdle(fn: string, f: FunctionSlots): void {
    if (f.running === 0 && f.queue.length === 0) this.fns.delete(fn);
  }
}
