import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from '@skiff/service-kit';
import { StreamConnection, type InvokeReply, type InvokeRequest } from '../stream/index.js';
import { forwardLines } from '../lines.js';
import { forceDelete } from '../runner.js';
import { Tail } from '../tail.js';
import type { InstanceState } from './state.js';

export interface LaunchOptions {
  runtime: string;
  bundleDir: string;
  spec: object;
  maxBodyBytes: number;
  /** Longest log line kept of the function's stdout and stderr; the rest is cut with a marker. */
  maxLineBytes: number;
  log: Logger;
  /**
   * A stem cell: the runtime boots without a function and waits (`waiting()`) until `adopt()`
   * hands it one. Its container's init pid is written to the bundle (`--pid-file`).
   */
  stem?: boolean;
}

/** What the launcher reports a container's limits as, for an instance whose limits changed since its start. */
export interface ReportedLimits {
  memoryBytes: number;
  pids: number;
}

/** A container's init on the host: its pid and start time (/proc/<pid>/stat field 22), which together name it. */
export interface ContainerInit {
  pid: number;
  starttime: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The end of the process's stderr: the runtime's own last words and the launcher's. */
  stderr: string;
}

const STDERR_TAIL_BYTES = 2048;

/** The instance's process ended before it said it was ready. */
export class InstanceExited extends Error {
  constructor(readonly exit: ExitInfo) {
    super(`the instance exited before it was ready (${exit.signal ?? `status ${exit.code}`})`);
    this.name = 'InstanceExited';
  }
}

/**
 * One long-lived container serving invocations over the runtime protocol on fd 3. Its stdout
 * and stderr are the function's logs. The pool decides what it does; this only does the I/O.
 */
export class StreamInstance {
  state: InstanceState = 'starting';
  inflight = 0;
  lastUsedAt = Date.now();
  readonly id: string;
  readonly exited: Promise<ExitInfo>;
  private readonly conn: StreamConnection;
  private readonly child: ChildProcess;
  private readonly bundleDir: string;
  private fnLog: Logger;
  /** Set when a stem cell is adopted: its limits are the function's, not those it started with. */
  private limits: ReportedLimits | undefined;

  private constructor(opts: LaunchOptions) {
    this.id = basename(opts.bundleDir);
    this.bundleDir = opts.bundleDir;
    const pidFile = opts.stem ? ['--pid-file', join(opts.bundleDir, 'pid')] : [];
    // fd 3 is a socketpair end (libuv makes 'pipe' stdio that way); the runtime passes it on.
    this.child = spawn(opts.runtime, ['run', '--preserve-fds', '1', ...pidFile, '--bundle', opts.bundleDir, `skiff-${this.id}`], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    this.conn = new StreamConnection(this.child.stdio[3] as Duplex, { maxBodyBytes: opts.maxBodyBytes, stem: opts.stem ?? false });
    const tail = new Tail(STDERR_TAIL_BYTES);
    this.fnLog = opts.log.child({ instance: this.id });
    forwardLines(this.child.stdout!, opts.maxLineBytes, (line) => this.fnLog.info({ stream: 'stdout' }, line));
    forwardLines(this.child.stderr!, opts.maxLineBytes, (line) => (tail.push(Buffer.from(`${line}\n`)), this.fnLog.info({ stream: 'stderr' }, line)));
    const stderr = () => reportAs(tail.text(), this.limits);
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        tail.push(Buffer.from(`cannot run ${opts.runtime}: ${err.message}\n`));
        resolve({ code: null, signal: null, stderr: stderr() });
      });
      this.child.once('close', (code, signal) => resolve({ code, signal, stderr: stderr() }));
    });
    void this.exited.then(async (exit) => {
      this.state = 'stopped';
      this.conn.close();
      // Killed by a signal, the runtime could not remove the container's cgroup and state.
      if (exit.signal) await forceDelete(opts.runtime, `skiff-${this.id}`);
      await rm(opts.bundleDir, { recursive: true, force: true });
    });
  }

  /** Writes the bundle and starts the container; `ready` says when it can take work. */
  static async launch(opts: LaunchOptions): Promise<StreamInstance> {
    await mkdir(opts.bundleDir, { recursive: true, mode: 0o700 });
    await writeFile(join(opts.bundleDir, 'config.json'), JSON.stringify(opts.spec));
    return new StreamInstance(opts);
  }

  /** Resolves once the runtime said it is ready; rejects if it exits first. */
  async ready(): Promise<void> {
    await Promise.race([
      this.conn.ready,
      this.exited.then((e) => {
        throw new InstanceExited(e);
      }),
    ]);
  }

  /** A stem cell's: resolves once it booted and waits for a function; rejects if it exits first. */
  async waiting(): Promise<void> {
    await Promise.race([
      this.conn.waiting,
      this.exited.then((e) => {
        throw new InstanceExited(e);
      }),
    ]);
  }

  /** A stem cell's container init, from the pid file the launcher wrote and /proc. */
  containerInit(): ContainerInit {
    const pid = Number(readFileSync(join(this.bundleDir, 'pid'), 'utf8').trim());
    if (!Number.isInteger(pid) || pid < 2) throw new Error(`${this.bundleDir}/pid holds no pid`);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const starttime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    if (!starttime || !/^\d+$/.test(starttime)) throw new Error(`/proc/${pid}/stat has no start time`);
    return { pid, starttime };
  }

  /**
   * Hands a waiting stem cell its function (the rest of the adoption, its mounts and limits,
   * is done by then): the environment and working directory its process runs with. From here
   * it is the function's instance: its logs carry `log`'s fields, its limit reports `limits`.
   */
  adopt(env: string[], cwd: string, log: Logger, limits: ReportedLimits): void {
    this.fnLog = log.child({ instance: this.id });
    this.limits = limits;
    this.conn.load(env, cwd);
  }

  invoke(req: InvokeRequest, body: Uint8Array): Promise<InvokeReply> {
    return this.conn.invoke(req, body);
  }

  /** Asks the runtime to finish and exit; kills the container if it has not after `graceMs`. */
  async stop(graceMs: number): Promise<ExitInfo> {
    if (this.state !== 'stopped') {
      const timer = setTimeout(() => this.kill(), graceMs);
      void this.conn.shutdown();
      await this.exited;
      clearTimeout(timer);
    }
    return this.exited;
  }

  /** Ends the container now (its runtime process takes PID 1 of the container with it). */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

// The launcher's limit reports (services/launcher/README.md) name the limits the container was
// started with; an adopted stem cell's are the function's since.
const OOM_REPORT = /^(skiff-launch: \S+: out of memory \(memory limit )-?\d+( bytes\))$/gm;
const PIDS_REPORT = /^(skiff-launch: \S+: process limit reached \(pids limit )-?\d+(\))$/gm;

function reportAs(stderr: string, limits: ReportedLimits | undefined): string {
  if (!limits) return stderr;
  return stderr.replace(OOM_REPORT, `$1${limits.memoryBytes}$2`).replace(PIDS_REPORT, `$1${limits.pids}$2`);
}
