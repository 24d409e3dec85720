// End-to-end tests of `skiff-launch run`: real namespaces and mounts, so they run as root.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const launcherDir = path.join(repo, 'services/launcher');
const launcher = path.join(launcherDir, 'build/skiff-launch');

let base = '';
let rootfs = '';
let bundleCount = 0;

type Config = Record<string, any>;

function baseConfig(args: string[]): Config {
  return {
    ociVersion: '1.0.2',
    process: { args, env: ['PATH=/bin', 'HOME=/'], cwd: '/' },
    root: { path: rootfs, readonly: true },
    hostname: 'skiff-fn',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux: {
      namespaces: ['pid', 'network', 'mount', 'ipc', 'uts', 'cgroup'].map((type) => ({ type })),
    },
  };
}

function makeBundle(config: Config): string {
  const dir = path.join(base, `bundle-${++bundleCount}`);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

interface RunOptions {
  input?: string;
  flags?: string[];
  stdio?: Array<'pipe' | number>;
  edit?: (config: Config) => void;
}

function run(args: string[], opts: RunOptions = {}) {
  const config = baseConfig(args);
  opts.edit?.(config);
  const bundle = makeBundle(config);
  const res = spawnSync(launcher, ['run', '--bundle', bundle, ...(opts.flags ?? []), `t${bundleCount}`], {
    input: opts.input ?? '',
    encoding: 'utf8',
    timeout: 20_000,
    stdio: opts.stdio ?? ['pipe', 'pipe', 'pipe'],
  });
  return { status: res.status, signal: res.signal, stdout: res.stdout ?? '', stderr: res.stderr ?? '' };
}

function sh(script: string, opts: RunOptions = {}) {
  return run(['sh', '-c', script], opts);
}

async function waitFor(check: () => boolean, what: string) {
  for (let i = 0; i < 400; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(() => {
  execFileSync('make', ['-s', '-C', launcherDir], { stdio: 'inherit' });
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-launch-test-'));
  rootfs = path.join(base, 'rootfs');
  for (const dir of ['bin', 'proc', 'dev', 'tmp', 'etc', 'sys']) fs.mkdirSync(path.join(rootfs, dir), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
  fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n');
  for (const applet of applets) {
    if (applet && applet !== 'busybox') fs.symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  }
});

afterAll(() => {
  if (base) fs.rmSync(base, { recursive: true, force: true });
});

describe('skiff-launch run', () => {
  it('passes stdin through to stdout', () => {
    const res = run(['cat'], { input: 'request body\nline 2\n' });
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('request body\nline 2\n');
    expect(res.status).toBe(0);
  });

  it("propagates the container's exit code", () => {
    expect(sh('exit 7').status).toBe(7);
    expect(sh('exit 0').status).toBe(0);
  });

  it('exits 128+N when the container is killed by signal N', async () => {
    const bundle = makeBundle(baseConfig(['sh', '-c', 'echo ready; exec sleep 30']));
    const pidFile = path.join(base, 'killed.pid');
    const child = spawn(launcher, ['run', '-b', bundle, '--pid-file', pidFile, 'killed'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = once(child, 'exit');
    await waitFor(() => fs.existsSync(pidFile), 'pid file');
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    expect(pid).toBeGreaterThan(1);
    process.kill(pid, 'SIGKILL');
    const [code] = await exited;
    expect(code).toBe(137);
  });

  it('forwards SIGTERM to the container process', async () => {
    const script = 'trap "exit 3" TERM; echo ready; while true; do sleep 0.05; done';
    const bundle = makeBundle(baseConfig(['sh', '-c', script]));
    const child = spawn(launcher, ['run', '--bundle=' + bundle, 'term'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = once(child, 'exit');
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await waitFor(() => out.includes('ready'), 'container start');
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(3);
  });

  it('runs the process as PID 1', () => {
    expect(sh('echo $$').stdout).toBe('1\n');
  });

  it('sets the hostname from config.json', () => {
    expect(sh('hostname').stdout).toBe('skiff-fn\n');
    expect(fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim()).not.toBe('skiff-fn');
  });

  it('has a private network namespace with only lo, and lo is up', () => {
    const res = sh('ls /sys/class/net; cat /sys/class/net/lo/flags; grep -c : /proc/net/dev');
    const [iface, flags, count] = res.stdout.trim().split('\n');
    expect(res.stderr).toBe('');
    expect(iface).toBe('lo');
    expect(Number(flags) & 1).toBe(1); // IFF_UP
    expect(count).toBe('1');
  });

  it('does not see files of the host /tmp', () => {
    const name = `skiff-host-marker-${process.pid}`;
    fs.writeFileSync(path.join('/tmp', name), 'secret');
    try {
      const res = sh(`test -e /tmp/${name} && echo visible || echo hidden; ls -a /tmp`);
      expect(res.stdout).toBe('hidden\n.\n..\n');
    } finally {
      fs.rmSync(path.join('/tmp', name));
    }
  });

  it('makes the root read-only while /tmp stays writable', () => {
    const res = sh('touch /rootfile 2>/dev/null && echo root-rw || echo root-ro; echo hi > /tmp/x && cat /tmp/x');
    expect(res.stdout).toBe('root-ro\nhi\n');
    expect(fs.existsSync(path.join(rootfs, 'rootfile'))).toBe(false);
  });

  it('closes fds other than 0-2 unless --preserve-fds keeps them', () => {
    const fd = fs.openSync(path.join(base, 'parent-fd'), 'w');
    try {
      const probe = 'test -e /proc/self/fd/3 && echo open || echo closed; ls /proc/1/fd';
      const closed = sh(probe, { stdio: ['pipe', 'pipe', 'pipe', fd] });
      expect(closed.stdout.split('\n')[0]).toBe('closed');
      const kept = sh(probe, { stdio: ['pipe', 'pipe', 'pipe', fd], flags: ['--preserve-fds', '1'] });
      expect(kept.stdout.split('\n')[0]).toBe('open');
    } finally {
      fs.closeSync(fd);
    }
  });

  it('rejects a config without process.args, naming the field', () => {
    const res = run(['unused'], { edit: (c) => delete c.process.args });
    expect(res.status).toBe(125);
    expect(res.stderr).toContain('process.args');
    expect(res.stderr).toBe('skiff-launch: config.json: process.args: must be a non-empty array of strings\n');
  });

  it('keeps a mount whose destination is a symlink to / inside the root', () => {
    const name = `skiff-escape-${process.pid}`;
    fs.symlinkSync('/', path.join(rootfs, 'evil'));
    try {
      const res = sh(`grep " /${name} " /proc/mounts | cut -d" " -f3`, {
        edit: (c) => c.mounts.push({ destination: `/evil/${name}`, type: 'tmpfs', source: 'tmpfs' }),
      });
      expect(res.stderr).toBe('');
      expect(res.status).toBe(0);
      expect(res.stdout).toBe('tmpfs\n'); // mounted at the container's /<name> ...
      expect(fs.existsSync(path.join('/', name))).toBe(false); // ... never the host's
      expect(fs.statSync(path.join(rootfs, name)).isDirectory()).toBe(true);
    } finally {
      fs.rmSync(path.join(rootfs, 'evil'));
      fs.rmSync(path.join('/', name), { recursive: true, force: true });
    }
  });

  it('bind-mounts directories and files read-only when asked', () => {
    const data = path.join(base, 'data');
    fs.mkdirSync(data, { recursive: true });
    fs.writeFileSync(path.join(data, 'in.txt'), 'from host\n');
    const res = sh('cat /data/in.txt /etc/app.conf; touch /data/new 2>/dev/null && echo rw || echo ro', {
      edit: (c) => {
        c.mounts.push({ destination: '/data', type: 'bind', source: data, options: ['rbind', 'ro'] });
        c.mounts.push({ destination: '/etc/app.conf', source: path.join(data, 'in.txt'), options: ['bind', 'ro'] });
      },
    });
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('from host\nfrom host\nro\n');
    expect(fs.existsSync(path.join(data, 'new'))).toBe(false);
  });

  it('kills the container when the launcher dies', async () => {
    const bundle = makeBundle(baseConfig(['sleep', '30']));
    const pidFile = path.join(base, 'orphan.pid');
    const child = spawn(launcher, ['run', '-b', bundle, '--pid-file', pidFile, 'orphan'], { stdio: 'ignore' });
    const exited = once(child, 'exit');
    await waitFor(() => fs.existsSync(pidFile), 'pid file');
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    child.kill('SIGKILL');
    await exited;
    const alive = () => {
      try {
        return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].startsWith('Z');
      } catch {
        return false;
      }
    };
    await waitFor(() => !alive(), 'container to die');
    expect(alive()).toBe(false);
    // its state stays behind (nobody was left to remove it): delete --force cleans up
    expect(spawnSync(launcher, ['delete', '--force', 'orphan']).status).toBe(0);
    expect(fs.existsSync('/run/skiff-launch/orphan')).toBe(false);
  });

  it('with --wait-fd, reads the bundle only after a byte arrives, and starts nothing at end of file', async () => {
    const start = (id: string) => {
      // The bundle does not exist yet: a launcher started ahead must not read it before the go.
      const bundle = path.join(base, `later-${id}`);
      const child = spawn(launcher, ['run', '--wait-fd', '3', '--bundle', bundle, id], { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      const exited = once(child, 'exit');
      return { bundle, child, go: child.stdio[3] as NodeJS.WritableStream, result: async () => ({ code: (await exited)[0], out }) };
    };
    const used = start('wait-go');
    await new Promise((r) => setTimeout(r, 100));
    expect(used.child.exitCode).toBeNull();
    fs.mkdirSync(used.bundle);
    fs.writeFileSync(path.join(used.bundle, 'config.json'), JSON.stringify(baseConfig(['sh', '-c', 'echo started; cat'])));
    used.go.end('g');
    used.child.stdin!.end('body');
    expect(await used.result()).toEqual({ code: 0, out: 'started\nbody' });

    const unused = start('wait-eof');
    unused.go.end();
    expect(await unused.result()).toEqual({ code: 0, out: '' });
    expect(fs.existsSync(unused.bundle)).toBe(false);
  });

  it('exits 127 when args[0] is not found and 126 when it cannot be executed', () => {
    const missing = run(['no-such-binary']);
    expect(missing.status).toBe(127);
    expect(missing.stderr).toBe('skiff-launch: exec no-such-binary: executable file not found in PATH\n');
    fs.writeFileSync(path.join(rootfs, 'etc/not-exec'), 'data', { mode: 0o644 });
    const denied = run(['/etc/not-exec']);
    expect(denied.status).toBe(126);
    expect(denied.stderr).toBe('skiff-launch: exec /etc/not-exec: Permission denied\n');
  });

  it('rejects unknown commands and flags', () => {
    const cmd = spawnSync(launcher, ['frob', 'x'], { encoding: 'utf8' });
    expect(cmd.status).not.toBe(0);
    expect(cmd.stderr).toContain('unknown command "frob"');
    const flag = spawnSync(launcher, ['run', '--frob', 'x'], { encoding: 'utf8' });
    expect(flag.status).not.toBe(0);
    expect(flag.stderr).toContain('unknown flag --frob');
    const version = spawnSync(launcher, ['--version'], { encoding: 'utf8' });
    expect(version.status).toBe(0);
    expect(version.stdout).toMatch(/^skiff-launch version /);
  });
});
