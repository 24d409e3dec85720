/**
 * The worker's end of skiff-stem (services/worker/native/skiff-stem.c): one long-lived root
 * process that sets, from outside, what names the function in an adopted stem cell's
 * container: its /function (the function image's own, read-only), its host name and the size
 * of its /tmp. One request at a time, one line each way.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';

export interface AdoptRequest {
  /** The container's init (its PID 1) on the host, and its start time (/proc/<pid>/stat field 22). */
  pid: number;
  starttime: string;
  hostname: string;
  /** Size of the container's /tmp; 0 leaves it. */
  tmpBytes: number;
  /** The function image's rootfs on the host; its `function` directory is what gets mounted. */
  rootfs: string;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Fields travel tab-separated on one line: none may hold a tab or a newline. */
const FIELD = /^[^\t\n]+$/;

export class StemHelper {
  private child: ChildProcessByStdio<Writable, Readable, Readable> | undefined;
  private readonly waiters: Waiter[] = [];
  private buffered = '';
  private stderr = '';

  constructor(private readonly path: string) {}

  /** True when the helper program is there (the build made it). */
  get available(): boolean {
    return existsSync(this.path);
  }

  adopt(req: AdoptRequest): Promise<void> {
    const fields = ['adopt', String(req.pid), req.starttime, req.hostname, String(req.tmpBytes), req.rootfs];
    if (!fields.every((f) => FIELD.test(f))) return Promise.reject(new Error(`skiff-stem: a field holds a tab or a newline, or is empty: ${JSON.stringify(fields)}`));
    const child = this.start();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      child.stdin.write(`${fields.join('\t')}\n`);
    });
  }

  close(): void {
    this.child?.stdin.end();
    this.child = undefined;
  }

  private start(): ChildProcessByStdio<Writable, Readable, Readable> {
    if (this.child) return this.child;
    const child = spawn(this.path, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.buffered = '';
    this.stderr = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => this.onData(d));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (this.stderr = (this.stderr + d).slice(-2048)));
    child.stdin.on('error', () => {});
    const gone = (why: string) => {
      if (this.child === child) this.child = undefined;
      for (const w of this.waiters.splice(0)) w.reject(new Error(`skiff-stem ${why}${this.stderr ? `: ${this.stderr.trim()}` : ''}`));
    };
    child.on('error', (err) => gone(`cannot run: ${err.message}`));
    child.on('close', (code, signal) => gone(`exited (${signal ?? `status ${code}`})`));
    return child;
  }

  private onData(d: string): void {
    this.buffered += d;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      const w = this.waiters.shift();
      if (!w) continue;
      if (line === 'ok') w.resolve();
      else w.reject(new Error(`skiff-stem: ${line.startsWith('error\t') ? line.slice(6) : line}`));
    }
  }
}
