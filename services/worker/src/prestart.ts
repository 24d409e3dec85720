import { spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import type { Duplex, Readable, Writable } from 'node:stream';

/** A launcher process waiting for its bundle: `go()` lets it read config.json and start, `cancel()` ends it unused. */
export interface ReadyLauncher {
  child: ChildProcessByStdio<Writable, Readable, Readable>;
  /** Names its bundle directory (bundles/<instanceId>) and container (skiff-<instanceId>). */
  instanceId: string;
  /**
   * The container's exit status, sent by the launcher as soon as the container is gone and
   * before it removes the cgroup and state (`--status-fd`); undefined if it ended without one
   * (a launcher failure, or killed). Its stdout and stderr end before the status is sent.
   */
  status: Promise<number | undefined>;
  go(): void;
  cancel(): void;
}

/** One socket for both directions: the go byte to the launcher, the exit status back. */
const CONTROL_FD = 3;
/**
 * How long after an invocation answered its replacement launcher is forked (at once when none
 * is left): the answer is still on its way through NATS and the gateway, and on a small node
 * the fork's milliseconds of CPU would hold it up.
 */
const REFILL_DELAY_MS = 20;

/** Only skiff-launch has `--wait-fd`; other runtimes (runc, crun) are started on demand. */
export function canPrestart(runtime: string): boolean {
  return basename(runtime) === 'skiff-launch';
}

/**
 * Launchers started ahead of need, for exec invocations. Starting a process from Node costs
 * milliseconds (the worker is a large process to fork), as much as a third of a container's
 * start. A prestarted `skiff-launch run --wait-fd 3 --status-fd 3` has read no bundle and made
 * no cgroup yet; it has only cloned its container init into new PID, network, IPC and UTS
 * namespaces, which depend on no bundle (see services/launcher/README.md). It blocks on fd 3
 * until the invocation's config.json is written and one byte tells it to go; the init is used
 * only if the config asks for exactly those namespaces, and everything else is set up then.
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
   * milliseconds, so this runs after an invocation has answered (REFILL_DELAY_MS), not while
   * one is starting.
   */
  refill(): void {
    if (this.refilling || this.closed) return;
    this.refilling = true;
    setTimeout(
      () => {
        this.refilling = false;
        this.fill();
      },
      this.ready.length === 0 ? 0 : REFILL_DELAY_MS,
    );
  }

  /** Ends the waiting launchers: each sees end of file on its fd 3 and exits without starting anything. */
  close(): void {
    this.closed = true;
    for (const l of this.ready.splice(0)) l.cancel();
  }

  private start(): ReadyLauncher {
    const instanceId = randomBytes(8).toString('hex');
    const fd = String(CONTROL_FD);
    const child = spawn(this.runtime, ['run', '--wait-fd', fd, '--status-fd', fd, '--bundle', join(this.bundlesDir, instanceId), containerIdOf(instanceId)], {
      // Node makes each extra 'pipe' a socketpair, so fd 3 carries both directions.
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    }) as ChildProcessByStdio<Writable, Readable, Readable>;
    const control = child.stdio[CONTROL_FD] as Duplex;
    // A launcher that died while waiting is skipped by take(); its pipes must not throw.
    control.on('error', () => {});
    child.on('error', () => {});
    return { child, instanceId, status: exitStatus(control), go: () => control.end('g'), cancel: () => control.end() };
  }
}

/** The decimal status line the launcher writes on its status fd, once. */
function exitStatus(control: Duplex): Promise<number | undefined> {
  return new Promise((resolve) => {
    let text = '';
    control.setEncoding('latin1');
    control.on('data', (d: string) => {
      text += d;
      if (text.includes('\n')) resolve(/^\d{1,3}\n$/.test(text) ? Number(text) : undefined);
    });
    control.on('close', () => resolve(undefined));
  });
}

export const containerIdOf = (instanceId: string) => `skiff-${instanceId}`;

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null && child.pid !== undefined;
}
