import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from '@skiff/contracts';
import { StreamConnection, type InvokeReply, type InvokeRequest } from '../stream/index.js';
import { forceDelete } from '../runner.js';
import { Tail } from '../tail.js';
import type { InstanceState } from './state.js';

export interface LaunchOptions {
  runtime: string;
  bundleDir: string;
  spec: object;
  maxBodyBytes: number;
  log: Logger;
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

  private constructor(opts: LaunchOptions) {
    this.id = basename(opts.bundleDir);
    // fd 3 is a socketpair end (libuv makes 'pipe' stdio that way); the runtime passes it on.
    this.child = spawn(opts.runtime, ['run', '--preserve-fds', '1', '--bundle', opts.bundleDir, `skiff-${this.id}`], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    this.conn = new StreamConnection(this.child.stdio[3] as Duplex, { maxBodyBytes: opts.maxBodyBytes });
    const tail = new Tail(STDERR_TAIL_BYTES);
    const fnLog = opts.log.child({ instance: this.id });
    forwardLines(this.child.stdout!, (line) => fnLog.info({ stream: 'stdout' }, line));
    forwardLines(this.child.stderr!, (line) => (tail.push(Buffer.from(`${line}\n`)), fnLog.info({ stream: 'stderr' }, line)));
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        tail.push(Buffer.from(`cannot run ${opts.runtime}: ${err.message}\n`));
        resolve({ code: null, signal: null, stderr: tail.text() });
      });
      this.child.once('close', (code, signal) => resolve({ code, signal, stderr: tail.text() }));
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

function forwardLines(stream: NodeJS.ReadableStream, each: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop()!;
    for (const l of lines) if (l) each(l);
  });
  stream.on('end', () => rest && each(rest));
}
