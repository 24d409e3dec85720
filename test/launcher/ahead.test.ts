// A launcher started ahead, the way the worker keeps its exec launchers: `run --wait-fd 3
// --status-fd 3` clones the container init into new PID, network, IPC and UTS namespaces before
// the bundle exists, hands it the config after the go only if the config asks for exactly those,
// and sends the exit status back on fd 3 before it cleans up.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Duplex } from 'node:stream';
import { existingCgroupDirs } from '@skiff/testkit';
import { Fixture, clonedAhead, launcher, tracedLauncher, waitFor } from './fixture.js';

const fx = new Fixture();
beforeAll(() => fx.setup());
afterAll(() => fx.teardown());

const TYPES = ['pid', 'net', 'ipc', 'uts', 'mnt', 'cgroup', 'user'];
const hasStrace = spawnSync('strace', ['-V']).status === 0;
const nsOf = (pid: number | 'self', type: string) => fs.readlinkSync(`/proc/${pid}/ns/${type}`);
const readNs = `for t in ${TYPES.join(' ')}; do readlink /proc/self/ns/$t; done`;
const parseNs = (out: string) => Object.fromEntries(out.trim().split('\n').slice(0, TYPES.length).map((l, i) => [TYPES[i], l]));

describe('a launcher started ahead (--wait-fd, --status-fd)', () => {
  it('runs the process in seven new namespaces, as PID 1 of the init cloned ahead', async () => {
    let ahead: Record<string, string> = {};
    const res = await fx.runAhead(fx.config(['sh', '-c', `${readNs}; echo $$`]), {
      beforeGo: (initPid) => (ahead = Object.fromEntries(TYPES.map((t) => [t, nsOf(initPid, t)]))),
    });
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    expect(res.code).toBe(0);
    const inside = parseNs(res.stdout);
    for (const t of TYPES) expect(inside[t], t).not.toBe(nsOf('self', t));
    // the init cloned ahead is the one used: its namespaces made before the go are the process's
    for (const t of ['pid', 'net', 'ipc', 'uts']) expect(inside[t], t).toBe(ahead[t]);
    // while it waited it had made no mount, cgroup or user namespace
    for (const t of ['mnt', 'cgroup', 'user']) expect(ahead[t], t).toBe(nsOf('self', t));
    expect(res.stdout.trim().split('\n').at(-1)).toBe('1');
  });

  it('sees the host mounts as they are at the go: a root mounted while it waited is there', async () => {
    // A private mount above the root, so that nothing propagates into a mount namespace copied
    // earlier, whatever the host's propagation.
    const fence = path.join(fx.base, 'fence');
    const root = path.join(fence, 'root');
    fs.mkdirSync(root, { recursive: true });
    execFileSync('mount', ['--bind', fence, fence]);
    execFileSync('mount', ['--make-private', fence]);
    try {
      const res = await fx.runAhead(fx.config(['sh', '-c', 'echo mounted'], { rootfs: root }), {
        beforeGo: () => execFileSync('mount', ['--bind', fx.rootfs, root]),
      });
      expect(res.stderr).toBe('');
      expect(res.stdout).toBe('mounted\n');
    } finally {
      execFileSync('umount', ['-R', fence]);
    }
  });

  it('gives a config asking for other namespaces a new init: none for the network, or one joined by path', async () => {
    const hostNet = nsOf('self', 'net');
    const without = fx.config(['readlink', '/proc/self/ns/net']);
    without.linux.namespaces = without.linux.namespaces.filter((n: { type: string }) => n.type !== 'network');
    const joined = fx.config(['readlink', '/proc/self/ns/net']);
    joined.linux.namespaces = joined.linux.namespaces.map((n: { type: string }) => (n.type === 'network' ? { type: 'network', path: `/proc/${process.pid}/ns/net` } : n));
    for (const cfg of [without, joined]) {
      let ahead = '';
      const res = await fx.runAhead(cfg, { beforeGo: (initPid) => (ahead = nsOf(initPid, 'net')) });
      expect(res.stderr).toBe('');
      expect(res.stdout).toBe(`${hostNet}\n`);
      expect(ahead).not.toBe(hostNet);
    }
  });

  it('goes on the byte alone, the wait fd kept open: the init cloned ahead is woken even when the launcher read the byte first', async () => {
    // Both wait on the same fd and only the launcher reads it: without a wake-up of its own the
    // init can miss the byte and both would wait for ever (often within a few runs).
    for (let i = 0; i < 12; i++) {
      const res = await Promise.race([
        fx.runAhead(fx.config(['sh', '-c', 'echo ran']), { byteOnly: true }),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`run ${i + 1}: no answer in 10 s`)), 10_000)),
      ]);
      expect(res).toMatchObject({ status: 0, code: 0, stdout: 'ran\n', stderr: '' });
    }
  });

  it('sends the exit status on fd 3 once stdout and stderr have ended, then cleans up and exits with it too', async () => {
    const cfg = fx.config(['sh', '-c', 'cat; echo to-stderr >&2; exit 3']);
    const res = await fx.runAhead(cfg, { input: 'body' });
    expect(res).toMatchObject({ status: 3, code: 3, stdout: 'body', stderr: 'to-stderr\n' });
    expect(existingCgroupDirs(cfg.linux.cgroupsPath)).toEqual([]); // made while it ran: see isolation.test.ts
    expect(fs.existsSync(path.join(fx.stateRoot, res.id))).toBe(false);
    const failed = await fx.runAhead(fx.config(['no-such-binary']));
    expect(failed).toMatchObject({ status: null, code: 127 });
    expect(failed.stderr).toContain('executable file not found');
  });

  // The teardown of the container's namespaces (its mounts above all) happens after the status
  // is sent, not before the launcher hears the init exit: checked on the order of its syscalls.
  it.skipIf(!hasStrace)('holds the container\'s namespaces open until it has sent the status (skipped where strace is not installed)', async () => {
    const cfg = fx.config(['true']);
    const { _id: id, ...clean } = cfg;
    const dir = path.join(fx.base, `bundle-${id}`);
    const trace = path.join(fx.base, `${id}.strace`);
    fx.ids.push(id);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(clean));
    // the launcher's own syscalls only (no -f), so no line is split by another process's; each
    // of its opens delayed, so an init not made to wait for them runs to its exit meanwhile
    const child = spawn('strace', ['-qq', '-e', 'trace=openat,write,close', '-e', 'inject=openat:delay_enter=50000', '-o', trace, launcher, '--root', fx.stateRoot, 'run', '--wait-fd', '3', '--status-fd', '3', '--bundle', dir, id], { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    await clonedAhead(await tracedLauncher(child.pid!));
    const closed = once(child, 'close');
    (child.stdio[3] as Duplex).end('g');
    child.stdin!.end();
    expect((await closed)[0]).toBe(0);
    const lines = fs.readFileSync(trace, 'utf8').split('\n');
    const status = lines.findIndex((l) => /write\(3, "0\\n", 2\)/.test(l));
    const opened = lines.map((l, i) => ({ i, m: /openat\(AT_FDCWD, "\/proc\/\d+\/ns\/mnt", .*\) = (\d+) \(DELAYED\)$/.exec(l) })).find((x) => x.m);
    expect(status).toBeGreaterThan(0);
    expect(opened, 'the mount namespace opened').toBeDefined();
    expect(opened!.i).toBeLessThan(status);
    const closedAt = lines.findIndex((l, i) => i > opened!.i && l.startsWith(`close(${opened!.m![1]})`));
    expect(closedAt).toBeGreaterThan(status);
  });

  // The init reads config.json itself when the go wakes it; strace stops the launcher as it opens
  // the file, so the init has read one version and the launcher then reads another.
  it.skipIf(!hasStrace)('uses the init cloned ahead only if it read the very config.json the launcher read (skipped where strace is not installed)', async () => {
    const first = fx.config(['echo', 'first']);
    const { _id: id, ...clean } = first;
    const second = { ...clean, process: { ...clean.process, args: ['echo', 'second'] } };
    const dir = path.join(fx.base, `bundle-${id}`);
    fx.ids.push(id);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(clean));
    const child = spawn('strace', ['-qq', '-o', '/dev/null', '-P', path.join(dir, 'config.json'), '-e', 'inject=openat:signal=SIGSTOP', launcher, '--root', fx.stateRoot, 'run', '--wait-fd', '3', '--status-fd', '3', '--bundle', dir, id], { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const closed = once(child, 'close');
    const launcherPid = await tracedLauncher(child.pid!);
    const initPid = await clonedAhead(launcherPid);
    (child.stdio[3] as Duplex).end('g');
    child.stdin!.end();
    // the init has read the first version and waits for the launcher in recv (the recvfrom
    // syscall; its number on this machine from the system headers, through perl's syscall.ph)
    const recvfrom = execFileSync('perl', ['-e', 'require "syscall.ph"; print &SYS_recvfrom'], { encoding: 'utf8' });
    await waitFor(() => fs.readFileSync(`/proc/${initPid}/syscall`, 'utf8').startsWith(`${recvfrom} `), 'the init to read config.json');
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(second));
    process.kill(launcherPid, 'SIGCONT');
    expect((await closed)[0]).toBe(0);
    expect(out).toBe('second\n');
  });

  it('ends the init cloned ahead, and creates nothing, when it is not needed (end of file on fd 3)', async () => {
    const id = `unused-${process.pid}`;
    const child = spawn(launcher, ['--root', fx.stateRoot, 'run', '--wait-fd', '3', '--status-fd', '3', '--bundle', path.join(fx.base, 'never'), id], { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    const initPid = await clonedAhead(child.pid!);
    const exited = once(child, 'exit');
    (child.stdio[3] as Duplex).end();
    expect((await exited)[0]).toBe(0);
    expect(fs.existsSync(`/proc/${initPid}`)).toBe(false); // killed and reaped
    expect(fs.existsSync(path.join(fx.stateRoot, id))).toBe(false);
  });
});
