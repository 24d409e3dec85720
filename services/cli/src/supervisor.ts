/**
 * The processes `skiff up` runs, kept running: a service that dies is started again after a
 * backoff, and the others keep running meanwhile (they reconnect to a restarted nats-server,
 * and the node table drops a dead worker until its successor beats). Stopping goes in order:
 * gateways first (no new work comes in), then schedulers, then workers (they finish what they
 * took), and nats-server last, so every service can still drain through it; each gets a
 * bounded time after SIGTERM and is then killed with its whole process group.
 *
 * Each service runs in a process group of its own, so a terminal's Ctrl-C reaches `skiff up`
 * alone and the services get exactly one SIGTERM, in that order. Node services also get an IPC
 * channel: when `skiff up` dies without stopping them (SIGKILL), it closes and they stop.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { LogFileOptions } from '@skiff/service-kit';
import { appendingTo, rotatingLines } from './append.js';

export interface ServiceSpec {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Stopped in ascending order: 0 first. */
  stopOrder: number;
  /** How long it may take to stop after SIGTERM before it is killed. */
  stopGraceMs: number;
  /** A Node.js service, given an IPC channel as its lifeline to `skiff up`. */
  node: boolean;
  /**
   * Its output goes to this log file, rotated by size (a program that writes no log of its own:
   * nats-server); without it, output is appended to `<logs>/<name>.log`, which a Node service
   * rotates itself (SKIFF_LOG_FILE).
   */
  rotatedLog?: LogFileOptions;
  /** Called with the pid of each process started for it. */
  onStart?: (pid: number) => void;
}

export interface SupervisorOptions {
  /** Each service's stdout and stderr are appended to `<logs>/<name>.log`. */
  logs: string;
  /** A service that exits before `supervise()` is a failed start: this is called, and it is not restarted. */
  onStartFailure: (name: string, why: string) => void;
  /** Lines for the operator (restarts, stops); default: stderr. */
  say?: (line: string) => void;
  backoff?: BackoffPolicy;
}

export interface BackoffPolicy {
  firstMs: number;
  maxMs: number;
  /** A service that ran this long before it died starts again after `firstMs`. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { firstMs: 500, maxMs: 30_000, resetAfterMs: 60_000 };

/** The wait before restart number `attempt` (1 for the first after a good run): doubling, capped. */
export function restartDelayMs(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  return Math.min(policy.maxMs, policy.firstMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
}

/** The restart number after a run of `ranMs` ended, given the previous one: long runs start over at 1. */
export function nextAttempt(previous: number, ranMs: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  return ranMs >= policy.resetAfterMs ? 1 : previous + 1;
}

interface Supervised {
  spec: ServiceSpec;
  /** The rotated log of a spec with rotatedLog, kept across restarts. */
  out: Writable | undefined;
  child: ChildProcess | undefined;
  startedAt: number;
  attempt: number;
  restartTimer: NodeJS.Timeout | undefined;
  exited: Promise<void>;
}

export class Supervisor {
  private readonly services: Supervised[] = [];
  private supervising = false;
  private stopping = false;
  private readonly say: (line: string) => void;
  private readonly backoff: BackoffPolicy;

  constructor(private readonly o: SupervisorOptions) {
    this.say = o.say ?? ((line) => console.error(line));
    this.backoff = o.backoff ?? DEFAULT_BACKOFF;
  }

  /** Starts the service now. */
  start(spec: ServiceSpec): void {
    const s: Supervised = { spec, out: spec.rotatedLog ? rotatingLines(spec.rotatedLog) : undefined, child: undefined, startedAt: 0, attempt: 0, restartTimer: undefined, exited: Promise.resolve() };
    this.services.push(s);
    this.run(s);
  }

  /** From now on a service that dies is restarted (before, the platform was still starting). */
  supervise(): void {
    this.supervising = true;
  }

  /** The pid of each service running now, by name (for the operator, and tests). */
  pids(): Record<string, number | undefined> {
    return Object.fromEntries(this.services.map((s) => [s.spec.name, s.child?.pid]));
  }

  /** Stops every service in order (see above); resolves when all are gone. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const s of this.services) clearTimeout(s.restartTimer);
    const orders = [...new Set(this.services.map((s) => s.spec.stopOrder))].sort((a, b) => a - b);
    for (const order of orders) await Promise.all(this.services.filter((s) => s.spec.stopOrder === order).map((s) => this.stopOne(s)));
  }

  /** Kills every service and its process group at once (a second Ctrl-C). */
  kill(): void {
    this.stopping = true;
    for (const s of this.services) {
      clearTimeout(s.restartTimer);
      killGroup(s.child);
    }
  }

  private run(s: Supervised): void {
    const { spec } = s;
    const log = spec.rotatedLog?.path ?? join(this.o.logs, `${spec.name}.log`);
    const out = s.out ?? appendingTo(log);
    const stdio: StdioOptions = spec.node ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'];
    const child = spawn(spec.command, spec.args, { env: spec.env, stdio, detached: true });
    // Two sources, one file: neither may end it for the other.
    child.stdout!.pipe(out, { end: false });
    child.stderr!.pipe(out, { end: false });
    s.child = child;
    s.startedAt = Date.now();
    if (child.pid !== undefined) spec.onStart?.(child.pid);
    s.exited = new Promise((resolve) => {
      child.once('error', (err) => {
        this.exitedNow(s, log, `cannot start: ${err.message}`);
        resolve();
      });
      child.once('exit', (code, signal) => {
        this.exitedNow(s, log, signal ?? `status ${code}`);
        resolve();
      });
    });
  }

  private exitedNow(s: Supervised, log: string, why: string): void {
    if (this.stopping || s.restartTimer) return;
    if (!this.supervising) return this.o.onStartFailure(s.spec.name, `${s.spec.name} exited (${why}); its log is ${log}`);
    const ranMs = Date.now() - s.startedAt;
    s.attempt = nextAttempt(s.attempt, ranMs, this.backoff);
    const delay = restartDelayMs(s.attempt, this.backoff);
    this.say(`skiff: ${s.spec.name} exited (${why}) after ${(ranMs / 1000).toFixed(1)}s; restarting it in ${delay / 1000}s (restart ${s.attempt}); its log is ${log}`);
    s.restartTimer = setTimeout(() => {
      s.restartTimer = undefined;
      if (this.stopping) return;
      this.run(s);
      this.say(`skiff: ${s.spec.name} restarted (pid ${s.child?.pid})`);
    }, delay);
  }

  private async stopOne(s: Supervised): Promise<void> {
    const child = s.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      this.say(`skiff: ${s.spec.name} did not stop within ${s.spec.stopGraceMs / 1000}s; killing it`);
      killGroup(child);
    }, s.spec.stopGraceMs);
    await s.exited;
    clearTimeout(timer);
  }
}

/** SIGKILL to the child's process group (it leads one: detached), taking its own children too. */
function killGroup(child: ChildProcess | undefined): void {
  if (!child?.pid || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}
