import { spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

/** A launcher process waiting for its bundle: `go()` lets it read config.json and start, `cancel()` ends it unused. */
export interface ReadyLauncher {
  child: ChildProcessByStdio<Writable, Readable, Readable>;
  /** Names its bundle directory (bundles/<instanceId>) and container (skiff-<instanceId>). */
  instanceId: string;
  go(): void;
  cancel(): void;
}

const WAIT_FD = 3;

/** Only skiff-launch has `--wait-fd`; other runtimes (runc, crun) are started on demand. */
export function canPrestart(runtime: string): boolean {
  return basename(runtime) === 'skiff-launch';
}

/**
 * Launchers started ahead of need, for exec invocations. Starting a process from Node costs
 * milliseconds (the worker is a large process to fork), as much as a third of a container's
 * start. A prestarted `skiff-launch run --wait-fd 3` is a plain process that has done nothing
 * yet: no namespaces, no cgroup, no bundle read. It blocks on fd 3 until the invocation's
 * config.json is written and one byte tells it to go, so the whole container start still
 * happens per invocation; only the fork and exec of the launcher itself are paid in advance.
 */
export class LauncherPool {
  private readonly ready: ReadyLauncher[] = [];
  private closed = false;
  private refilling = false;

  constructor(
    private readonly runtime: string,
    private readonly bundlesDir: string,
    private readonly size: number,
  ) {}

  /** Starts the first launchers, so the first invocation finds one waiting. */
  fill(): void {
    while (!this.closed && this.ready.length < this.size) this.ready.push(this.start());
  }

  /** A waiting launcher, or a new one when none is left. Call `refill()` once the invocation is done. */
  take(): ReadyLauncher {
    let l: ReadyLauncher | undefined;
    while ((l = this.ready.shift()) && !alive(l.child));
    return l ?? this.start();
  }

  /**
   * Starts launchers to replace those taken. Forking the worker blocks its event loop for
   * milliseconds, so this runs after an invocation has answered, not while one is starting.
   */
  refill(): void {
    if (this.refilling || this.closed) return;
    this.refilling = true;
    setImmediate(() => {
      this.refilling = false;
      this.fill();
    });
  }

  /** Ends the waiting launchers: each sees end of file on its fd 3 and exits without starting anything. */
  close(): void {
    this.closed = true;
    for (const l of this.ready.splice(0)) l.cancel();
  }

  private start(): ReadyLauncher {
    const instanceId = randomBytes(8).toString('hex');
    const child = spawn(this.runtime, ['run', '--wait-fd', String(WAIT_FD), '--bundle', join(this.bundlesDir, instanceId), containerIdOf(instanceId)], {
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    }) as ChildProcessByStdio<Writable, Readable, Readable>;
    const wait = child.stdio[WAIT_FD] as Writable;
    // A launcher that died while waiting is skipped by take(); its pipes must not throw.
    wait.on('error', () => {});
    child.on('error', () => {});
    return { child, instanceId, go: () => wait.end('g'), cancel: () => wait.end() };
  }
}

export const containerIdOf = (instanceId: string) => `skiff-${instanceId}`;

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null && child.pid !== undefined;
}
