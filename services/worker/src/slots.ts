import { SkiffError, remainingMs } from '@skiff/contracts';

/**
 * A waiter gives up this long before its deadline: starting with less time left is unlikely to
 * finish, and the caller hears "no capacity" (retry soon) rather than a deadline it cannot act on.
 */
export const GIVE_UP_MARGIN_MS = 50;

interface Waiter {
  grant: () => void;
  timer: NodeJS.Timeout;
}

/**
 * How many invocations run at once on this node, and a bounded queue for the rest. A waiter
 * leaves the queue when a slot frees or its deadline passes; a full queue refuses at once.
 * Nothing here is unbounded.
 */
export class Slots {
  private used = 0;
  private readonly queue: Waiter[] = [];

  constructor(
    readonly size: number,
    readonly maxWaiting: number,
  ) {}

  get inUse(): number {
    return this.used;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Resolves with a release function once a slot is held. */
  acquire(deadline: number): Promise<() => void> {
    if (this.used < this.size) {
      this.used++;
      return Promise.resolve(this.releaser());
    }
    if (this.queue.length >= this.maxWaiting) {
      return Promise.reject(new SkiffError('SKIFF_OVERLOADED', `the node is running ${this.used} invocations and ${this.queue.length} more are waiting`));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          resolve(this.releaser());
        },
        timer: setTimeout(() => {
          this.queue.splice(this.queue.indexOf(waiter), 1);
          reject(new SkiffError('SKIFF_NO_CAPACITY', 'no slot freed up on the node before the deadline'));
        }, Math.max(0, remainingMs(deadline) - GIVE_UP_MARGIN_MS)),
      };
      this.queue.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      // The slot passes straight to the next waiter; otherwise it is free.
      if (next) next.grant();
      else this.used--;
    };
  }
}
