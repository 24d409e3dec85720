import { execFile, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { SkiffError, remainingMs, type Invocation } from '@skiff/contracts';
import { containerIdOf, type ReadyLauncher } from './prestart.js';
import { Tail } from './tail.js';

/** Launcher exit status for "the runtime itself failed" (runc and crun use it too). */
const RUNTIME_FAILURE = 125;
const STDERR_TAIL_BYTES = 2048;

export interface ExecRequest {
  runtime: string;
  /** bundles/<instanceId>; the container is skiff-<instanceId>. */
  bundleDir: string;
  /** A launcher already started for this bundle, waiting to go; otherwise one is started. */
  prestarted?: ReadyLauncher | undefined;
  spec: object;
  invocation: Invocation;
  body: Uint8Array;
  maxOutputBytes: number;
}

export interface ExecOutcome {
  stdout: Buffer;
  /** The end of the function's stderr, for the error detail and the logs. */
  stderrTail: string;
}


/**
 * exec mode: one container per invocation, the body on stdin, the output from stdout, the
 * exit status as success or failure. The container is killed when the deadline passes.
 */
export async function runExec(req: ExecRequest): Promise<ExecOutcome> {
  const { invocation: inv } = req;
  const containerId = containerIdOf(basename(req.bundleDir));
  let killed = false;
  let started = false;
  // Resolves when the runtime process is gone, having removed the container's cgroup.
  let runtimeGone: Promise<unknown> = Promise.resolve();
  try {
    // Synchronous on purpose: tens of microseconds on the event loop, where the promise API
    // takes a thread-pool round trip per call, a millisecond or two before the container starts.
    mkdirSync(req.bundleDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(req.bundleDir, 'config.json'), JSON.stringify(req.spec));
    return await runContainer(req);
  } catch (err) {
    // A runtime killed at the deadline could not clean up after itself.
    if (err instanceof SkiffError && killed) await forceDelete(req.runtime, containerId);
    throw err;
  } finally {
    if (!started) req.prestarted?.cancel();
    // The bundle holds only config.json; removing it need not delay the answer. It goes after
    // the runtime: while it is there, a worker that starts after this one died knows the
    // container was this node's (leftovers.ts).
    void runtimeGone.then(() => rm(req.bundleDir, { recursive: true, force: true })).catch(() => undefined);
  }

  function runContainer(r: ExecRequest): Promise<ExecOutcome> {
    return new Promise((resolve, reject) => {
      const child = r.prestarted ? r.prestarted.child : spawn(r.runtime, ['run', '--bundle', r.bundleDir, containerId], { stdio: ['pipe', 'pipe', 'pipe'] });
      r.prestarted?.go();
      started = true;
      runtimeGone = new Promise((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done(undefined);
        child.once('close', done);
        child.once('error', done);
      });
      const out: Buffer[] = [];
      let outBytes = 0;
      const stderr = new Tail(STDERR_TAIL_BYTES);
      let failure: SkiffError | undefined;
      const kill = (why: SkiffError) => {
        failure ??= why;
        killed = true;
        child.kill('SIGKILL');
      };
      const timer = setTimeout(
        () => kill(new SkiffError('SKIFF_DEADLINE_EXCEEDED', `function "${inv.fn}" ran past its deadline and was stopped`)),
        remainingMs(inv.deadline),
      );
      child.stdout.on('data', (chunk: Buffer) => {
        outBytes += chunk.length;
        if (outBytes > r.maxOutputBytes) kill(new SkiffError('SKIFF_FN_OUTPUT_TOO_LARGE', `function "${inv.fn}" wrote more than ${r.maxOutputBytes} bytes`));
        else out.push(chunk);
      });
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      // A function that does not read its input closes stdin early; that is not an error.
      child.stdin.on('error', () => {});
      child.stdin.end(r.body);
      let settled = false;
      const settle = (code: number | null, signal: NodeJS.Signals | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (failure) return reject(failure);
        const tail = stderr.text();
        if (code === 0) return resolve({ stdout: Buffer.concat(out, outBytes), stderrTail: tail });
        reject(exitFailure(inv.fn, code, signal, tail));
      };
      child.on('error', (err) => {
        settled = true;
        clearTimeout(timer);
        reject(new SkiffError('SKIFF_CONTAINER_FAILED', `cannot run the container runtime ${r.runtime}: ${err.message}`, { cause: err }));
      });
      child.on('close', settle);
      // A prestarted launcher reports the status before it removes the container's cgroup and
      // state; with end of file on stdout and stderr as well, the answer is complete.
      if (r.prestarted) {
        let open = 2;
        let status: number | undefined;
        const early = () => {
          if (open === 0 && status !== undefined) settle(status, null);
        };
        const ended = () => {
          open--;
          early();
        };
        child.stdout.once('end', ended);
        child.stderr.once('end', ended);
        void r.prestarted.status.then((s) => {
          status = s;
          early();
        });
      }
    });
  }
}

// Lines the launcher prints when a cgroup limit stopped the container (see services/launcher/README.md).
const OUT_OF_MEMORY = /^skiff-launch: \S+: out of memory \(memory limit (\d+) bytes\)$/m;
const PROCESS_LIMIT = /^skiff-launch: \S+: process limit reached \(pids limit (\d+)\)$/m;

/** What a container's exit status and last stderr lines mean for the caller. */
export function exitFailure(fn: string, code: number | null, signal: NodeJS.Signals | null, stderr: string): SkiffError {
  const said = stderr ? `: ${stderr}` : '';
  const oom = OUT_OF_MEMORY.exec(stderr);
  if (oom) return new SkiffError('SKIFF_OUT_OF_MEMORY', `function "${fn}" went over its memory limit of ${Number(oom[1]) / 1024 / 1024} MiB and was killed`);
  const pids = PROCESS_LIMIT.exec(stderr);
  // A function may survive a refused fork; only a failed run is reported as the limit's doing.
  if (pids && code !== 0) return new SkiffError('SKIFF_TOO_MANY_PROCESSES', `function "${fn}" hit its limit of ${pids[1]} processes${said}`);
  if (code === RUNTIME_FAILURE) return new SkiffError('SKIFF_CONTAINER_FAILED', `the container for "${fn}" could not be started${said}`);
  if (code !== null && code > 128) return new SkiffError('SKIFF_FN_FAILED', `function "${fn}" was killed by signal ${code - 128}${said}`);
  if (code === null) return new SkiffError('SKIFF_CONTAINER_FAILED', `the runtime for "${fn}" was killed by ${signal}${said}`);
  return new SkiffError('SKIFF_FN_FAILED', `function "${fn}" exited with status ${code}${said}`);
}

/**
 * `<runtime> delete --force ID`: removes what a runtime killed mid-run left behind (its cgroup,
 * its state). Best effort: nothing is there when the runtime cleaned up itself.
 */
export function forceDelete(runtime: string, containerId: string): Promise<void> {
  return new Promise((resolve) => execFile(runtime, ['delete', '--force', containerId], () => resolve()));
}
