// Shared fixture for container tests: a busybox rootfs owned by host root, and bundles with
// the worker's full isolation profile (seven namespaces, a user namespace, no capabilities,
// no_new_privs, the default seccomp profile, masked and read-only paths, cgroup limits).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import { defaultSeccompProfile } from '@skiff/worker';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const launcherDir = path.join(repo, 'services/launcher');
// SKIFF_TEST_LAUNCHER: run the suites against another build (e.g. a sabotaged one in /tmp).
export const launcher = process.env.SKIFF_TEST_LAUNCHER ?? path.join(launcherDir, 'build/skiff-launch');
export const RUNC = '/usr/sbin/runc';

export type Config = Record<string, any>;

export const MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

let uidSlot = 40 + (process.pid % 1000); // keep parallel test files on distinct ranges

/** A host uid range of 65536 ids no other bundle of this process uses. */
export function nextHostId(): number {
  return 1_000_000 + 65536 * uidSlot++;
}

export class Fixture {
  base = '';
  rootfs = '';
  stateRoot = '';
  private count = 0;
  readonly ids: string[] = [];

  setup(): void {
    execFileSync('make', ['-s', '-C', launcherDir], { stdio: 'inherit' });
    this.base = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-launch-fx-'));
    fs.chmodSync(this.base, 0o755); // the container's uid must be able to reach the rootfs
    this.rootfs = path.join(this.base, 'rootfs');
    this.stateRoot = path.join(this.base, 'state');
    for (const dir of ['bin', 'proc', 'dev', 'tmp', 'etc', 'sys']) fs.mkdirSync(path.join(this.rootfs, dir), { recursive: true });
    fs.copyFileSync('/bin/busybox', path.join(this.rootfs, 'bin/busybox'));
    fs.chmodSync(path.join(this.rootfs, 'bin/busybox'), 0o755);
    for (const applet of execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n')) {
      if (applet && applet !== 'busybox') fs.symlinkSync('busybox', path.join(this.rootfs, 'bin', applet));
    }
  }

  teardown(): void {
    for (const id of this.ids) spawnSync(launcher, ['--root', this.stateRoot, 'delete', '--force', id]);
    for (const id of this.ids) spawnSync(RUNC, ['--root', this.stateRoot + '-runc', 'delete', '--force', id]);
    if (this.base) fs.rmSync(this.base, { recursive: true, force: true });
  }

  /** The worker's full profile around `args`. */
  config(args: string[], opts: { hostId?: number; limits?: boolean; rootfs?: string } = {}): Config {
    const hostId = opts.hostId ?? nextHostId();
    const id = `fx${process.pid}-${++this.count}`;
    const cfg: Config = {
      ociVersion: '1.0.2',
      process: {
        terminal: false,
        user: { uid: 0, gid: 0 },
        args,
        env: ['PATH=/bin', 'HOME=/'],
        cwd: '/',
        noNewPrivileges: true,
        capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
        rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      },
      root: { path: opts.rootfs ?? this.rootfs, readonly: true },
      hostname: 'skiff-fn',
      mounts: [
        { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
        { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
        { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', 'size=65536k'] },
        { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
      ],
      linux: {
        namespaces: ['pid', 'network', 'mount', 'ipc', 'uts', 'cgroup', 'user'].map((type) => ({ type })),
        uidMappings: [{ containerID: 0, hostID: hostId, size: 65536 }],
        gidMappings: [{ containerID: 0, hostID: hostId, size: 65536 }],
        maskedPaths: MASKED_PATHS,
        readonlyPaths: READONLY_PATHS,
        seccomp: defaultSeccompProfile(),
        cgroupsPath: `/skiff-test/${id}`,
      },
      _id: id,
    };
    if (opts.limits !== false) {
      cfg.linux.resources = { memory: { limit: 128 << 20, swap: 128 << 20 }, cpu: { quota: 100000, period: 100000 }, pids: { limit: 128 } };
    }
    return cfg;
  }

  /** Writes config.json into a new bundle directory; returns [dir, id]. */
  bundle(cfg: Config): [string, string] {
    const id: string = cfg._id ?? `fx${process.pid}-${++this.count}`;
    const { _id, ...clean } = cfg;
    void _id;
    const dir = path.join(this.base, `bundle-${id}`);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(clean));
    this.ids.push(id);
    return [dir, id];
  }

  /** `run` under a runtime (skiff-launch by default); stdout, stderr and status. */
  run(cfg: Config, opts: { runtime?: string; input?: string; stdio?: any[] } = {}) {
    const runtime = opts.runtime ?? launcher;
    const [dir, id] = this.bundle(cfg);
    const root = runtime === launcher ? this.stateRoot : this.stateRoot + '-runc';
    const res = spawnSync(runtime, ['--root', root, 'run', '--bundle', dir, id], {
      input: opts.input ?? '',
      encoding: 'utf8',
      timeout: 60_000,
      stdio: opts.stdio ?? ['pipe', 'pipe', 'pipe'],
    });
    return { status: res.status, stdout: res.stdout ?? '', stderr: res.stderr ?? '', id, dir, pid: res.pid };
  }

  /**
   * `run` as the worker runs it: the launcher starts with `--wait-fd 3 --status-fd 3` and
   * clones its init ahead; only then is config.json written and the go byte sent on fd 3.
   * `status` is the line the launcher sent back on fd 3 (null: none), `code` its exit code.
   */
  /**
   * Runs cfg under a launcher started ahead. The go is the byte and end of file, as the worker
   * sends it, or with `byteOnly` the byte alone, fd 3 kept open until the launcher closes it.
   */
  async runAhead(cfg: Config, opts: { input?: string; beforeGo?: (initPid: number) => void; byteOnly?: boolean } = {}) {
    const { _id, ...clean } = cfg;
    const id: string = _id ?? `fx${process.pid}-${++this.count}`;
    const dir = path.join(this.base, `bundle-${id}`);
    this.ids.push(id);
    const child = spawn(launcher, ['--root', this.stateRoot, 'run', '--wait-fd', '3', '--status-fd', '3', '--bundle', dir, id], { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    const control = child.stdio[3] as Duplex;
    let stdout = '';
    let stderr = '';
    let status = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    control.on('data', (d) => (status += d));
    const closed = once(child, 'close');
    const initPid = await clonedAhead(child.pid!);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(clean));
    opts.beforeGo?.(initPid);
    if (opts.byteOnly) control.write('g');
    else control.end('g');
    child.stdin!.end(opts.input ?? '');
    const [code] = await closed;
    return { status: /^\d+\n$/.test(status) ? Number(status) : null, code: code as number | null, stdout, stderr, id, initPid };
  }

  /**
   * Runs cfg, whose process prints "== ready" and then reads a line from stdin; `whileHeld`
   * looks at it from the host in between, before the line is sent.
   */
  async runHeld<T>(cfg: Config, whileHeld: () => T) {
    const [dir, id] = this.bundle(cfg);
    const child = spawn(launcher, ['--root', this.stateRoot, 'run', '--bundle', dir, id], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const closed = once(child, 'close');
    await Promise.race([
      waitFor(() => stdout.includes('== ready\n'), 'the container to be ready'),
      closed.then(() => Promise.reject(new Error(`the container exited before it was ready: ${stderr}`))),
    ]);
    const held = whileHeld();
    child.stdin!.end('go\n');
    const [code] = await closed;
    return { status: code as number | null, stdout: stdout.replace('== ready\n', ''), stderr, id, held };
  }

  sh(script: string, edit?: (c: Config) => void, runtime?: string) {
    const cfg = this.config(['sh', '-c', script]);
    edit?.(cfg);
    return this.run(cfg, { runtime });
  }

  /** For create/start: the container keeps the stdio it inherits, so give it files, not pipes. */
  detached(...args: string[]) {
    const out = path.join(this.base, `cli-${++this.count}.out`);
    const err = path.join(this.base, `cli-${this.count}.err`);
    const [o, e] = [fs.openSync(out, 'w'), fs.openSync(err, 'w')];
    try {
      const res = spawnSync(launcher, ['--root', this.stateRoot, ...args], { stdio: ['ignore', o, e], timeout: 30_000 });
      return { status: res.status, stdout: fs.readFileSync(out, 'utf8'), stderr: fs.readFileSync(err, 'utf8') };
    } finally {
      fs.closeSync(o);
      fs.closeSync(e);
    }
  }

  cli(...args: string[]) {
    const res = spawnSync(launcher, ['--root', this.stateRoot, ...args], { encoding: 'utf8', timeout: 30_000 });
    return { status: res.status, stdout: res.stdout ?? '', stderr: res.stderr ?? '' };
  }
}



/** The pids of a process's children, or null once the process is gone. */
function childrenOf(pid: number): number[] | null {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** The pid of the init a launcher started with --wait-fd has cloned ahead (its only child). */
export async function clonedAhead(launcherPid: number): Promise<number> {
  const kids = await waitForValue(() => {
    const k = childrenOf(launcherPid);
    return k === null || k.length === 1 ? k : undefined;
  }, 'the launcher to clone its init ahead');
  if (kids === null) throw new Error(`launcher ${launcherPid} exited before it cloned its init`);
  return kids[0];
}

/**
 * The launcher a `strace … launcher …` started. strace first forks short-lived children of its
 * own to probe ptrace, so its first child is not always the launcher: the one running the
 * launcher's executable is.
 */
export async function tracedLauncher(stracePid: number): Promise<number> {
  const exe = fs.realpathSync(launcher);
  const exeOf = (pid: number) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/exe`);
    } catch {
      return ''; // gone meanwhile
    }
  };
  const pid = await waitForValue(() => {
    const k = childrenOf(stracePid);
    return k === null ? null : k.find((c) => exeOf(c) === exe);
  }, 'strace to start the launcher');
  if (pid === null) throw new Error(`strace ${stracePid} exited before it started the launcher`);
  return pid;
}

/** Polls `get` until it returns something other than undefined, and returns that. */
export async function waitForValue<T>(get: () => T | undefined, what: string, ms = 10_000): Promise<T> {
  let value: T | undefined;
  await waitFor(() => (value = get()) !== undefined, what, ms);
  return value as T;
}

export async function waitFor(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  for (let waited = 0; waited < ms; waited += 25) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}
