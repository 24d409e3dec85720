// skiff-stem (services/worker/native), the root helper that makes an adopted stem cell its
// function's: it must change only the container it is pointed at, and only as asked. Real
// containers (skiff-launch, the worker's full profile), a real helper process. Needs root.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Fixture, launcher, repo, waitFor } from '../launcher/fixture.js';

// SKIFF_TEST_STEM_HELPER: run against another build (e.g. a sabotaged one in /tmp).
const HELPER = process.env.SKIFF_TEST_STEM_HELPER ?? path.join(repo, 'services/worker/native/build/skiff-stem');
const root = process.getuid?.() === 0;
const fx = new Fixture();
let source = '';
let shared = '';
const marker = randomBytes(8).toString('hex');

beforeAll(() => {
  if (!root) return;
  execFileSync('make', ['-s', '-C', path.join(repo, 'services/worker/native')], { stdio: 'inherit' });
  fx.setup();
  fs.mkdirSync(path.join(fx.rootfs, 'function'));
  // An image's rootfs as the worker prepared it: its code under function/.
  source = path.join(fx.base, 'image');
  fs.mkdirSync(path.join(source, 'function'), { recursive: true });
  fs.writeFileSync(path.join(source, 'function', 'marker'), marker);
  // And one whose function/ is a symlink to the host's /etc.
  fs.mkdirSync(path.join(fx.base, 'evil'));
  fs.symlinkSync('/etc', path.join(fx.base, 'evil', 'function'));
  // And one on a shared mount, as the worker's image mounts are on a host whose / is shared
  // (the systemd default; this machine's is private).
  shared = path.join(fx.base, 'shared-image');
  fs.mkdirSync(path.join(shared, 'function', 'sub'), { recursive: true });
  fs.writeFileSync(path.join(shared, 'function', 'marker'), marker);
  execFileSync('mount', ['--bind', shared, shared]);
  execFileSync('mount', ['--make-shared', shared]);
});
afterAll(() => {
  if (!root) return;
  for (const m of [path.join(shared, 'function', 'sub'), shared]) spawnSync('umount', ['-l', m]);
  fx.teardown();
});

const starttime = (pid: number) => fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19]!;

interface Container {
  pid: number;
  /** Lets the container's script go on, and resolves with what it printed. */
  go: () => Promise<string>;
}

/** A container whose shell waits for a line on stdin, then shows what adopting changed. */
async function container(): Promise<Container> {
  const cfg = fx.config(['sh', '-c', 'read go; cat /function/marker; echo; hostname; df -k /tmp | tail -1; touch /function/x 2>/dev/null && echo writable || echo read-only']);
  const [dir, id] = fx.bundle(cfg);
  const child = spawn(launcher, ['--root', fx.stateRoot, 'run', '--pid-file', path.join(dir, 'pid'), '--bundle', dir, id], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const closed = new Promise((r) => child.on('close', r));
  const pidFile = path.join(dir, 'pid');
  // Adopted once it runs its process: in its own user namespace, not the launcher's setup.
  await waitFor(() => fs.existsSync(pidFile) && fs.readlinkSync(`/proc/${fs.readFileSync(pidFile, 'utf8').trim()}/ns/user`) !== fs.readlinkSync('/proc/self/ns/user'), 'the container to run');
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  return { pid, go: async () => (child.stdin.end('go\n'), await closed, out) };
}

function helper(): { ask: (fields: (string | number)[]) => Promise<string>; child: ChildProcessWithoutNullStreams } {
  const child = spawn(HELPER, [], { stdio: ['pipe', 'pipe', 'pipe'] });
  let buffered = '';
  const waiting: ((line: string) => void)[] = [];
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    buffered += d;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      waiting.shift()?.(line);
    }
  });
  return { child, ask: (fields) => new Promise((r) => (waiting.push(r), child.stdin.write(`${fields.join('\t')}\n`))) };
}

describe.skipIf(!root)('skiff-stem (needs root)', () => {
  it("mounts the image's /function read-only, sets the host name and /tmp's size, once", async () => {
    const c = await container();
    const h = helper();
    expect(await h.ask(['adopt', c.pid, starttime(c.pid), 'adopter', 16 << 20, source])).toBe('ok');
    expect(await h.ask(['adopt', c.pid, starttime(c.pid), 'again', 0, source])).toMatch(/^error\t.*a mount point already: adopted before/);
    h.child.stdin.end();
    const lines = (await c.go()).trim().split('\n');
    expect(lines[0]).toBe(marker);
    expect(lines[1]).toBe('adopter');
    expect(lines[2]).toMatch(/^tmpfs\s+16384\s/);
    expect(lines[3]).toBe('read-only');
  });

  it('refuses a process whose start time is not the one given (a recycled pid)', async () => {
    const c = await container();
    const h = helper();
    expect(await h.ask(['adopt', c.pid, String(Number(starttime(c.pid)) + 1), 'x', 0, source])).toMatch(/^error\t.*not the stem cell/);
    h.child.stdin.end();
    // Nothing changed in there: its own host name, no code at /function.
    const out = (await c.go()).split('\n');
    expect(out).toContain('skiff-fn');
    expect(out).not.toContain(marker);
  });

  it("refuses a process in the helper's own namespaces: only a container is ever changed", async () => {
    const h = helper();
    const pid = process.pid; // this test process: the host's mount, UTS and user namespaces
    expect(await h.ask(['adopt', pid, starttime(pid), 'hijacked', 0, source])).toMatch(/^error\t.*shares this program's mnt namespace: not a container/);
    h.child.stdin.end();
    expect(fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim()).not.toBe('hijacked');
  });

  it("refuses an image whose function/ is a symlink (it would mount the host's /etc), and mounts nothing", async () => {
    const c = await container();
    const h = helper();
    expect(await h.ask(['adopt', c.pid, starttime(c.pid), 'x', 0, path.join(fx.base, 'evil')])).toMatch(/^error\t.*function: a symlink; refused/);
    // /function is still the stem cell's own: a proper adoption is not refused as a second one.
    expect(await h.ask(['adopt', c.pid, starttime(c.pid), 'x', 0, source])).toBe('ok');
    h.child.stdin.end();
    expect((await c.go()).split('\n')[0]).toBe(marker);
  });

  it("makes the function's mount private: nothing mounted on the host under the image's shows up in the container", async () => {
    const c = await container();
    const h = helper();
    expect(await h.ask(['adopt', c.pid, starttime(c.pid), 'adopter', 0, shared])).toBe('ok');
    h.child.stdin.end();
    // Mounted on the host after the adoption, under the image's (shared) function/.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'leak', path.join(shared, 'function', 'sub')]);
    const mounts = fs.readFileSync(`/proc/${c.pid}/mountinfo`, 'utf8').split('\n').map((l) => l.split(' '));
    const fnMount = mounts.find((f) => f[4] === '/function');
    expect(fnMount, 'the function mount').toBeDefined();
    // Optional fields (7th on, up to "-"): "shared:N" would make it a peer of the image's mount.
    expect(fnMount!.slice(6, fnMount!.indexOf('-'))).toEqual([]);
    expect(mounts.filter((f) => f[4]?.startsWith('/function/'))).toEqual([]);
    expect((await c.go()).split('\n')[0]).toBe(marker);
  });

  it('refuses a process whose mount namespace is owned by a user namespace of its own (it could undo the mounts)', async () => {
    // Not a container skiff-launch made: a process that unshared its own user, mount and UTS
    // namespaces (root in them) and moved into a root with a /function, as a stem cell that
    // escaped its seccomp profile could.
    const own = path.join(fx.base, 'own-ns');
    fs.cpSync(fx.rootfs, own, { recursive: true, verbatimSymlinks: true });
    fs.mkdirSync(path.join(own, 'oldroot'));
    const script = `mount --bind ${own} ${own} && cd ${own} && pivot_root . oldroot && exec /bin/sh -c 'echo ready; read go; cat /function/marker 2>/dev/null || echo none'`;
    const child = spawn('unshare', ['--user', '--map-root-user', '--mount', '--uts', '--propagation', 'private', 'sh', '-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const closed = new Promise((r) => child.on('close', r));
    await waitFor(() => out.includes('ready\n'), 'the process in namespaces of its own');
    const h = helper();
    expect(await h.ask(['adopt', child.pid!, starttime(child.pid!), 'owned', 0, source])).toMatch(/^error\t.*mnt namespace is owned by a user namespace of its own/);
    h.child.stdin.end();
    child.stdin.end('go\n');
    await closed;
    expect(out.split('\n')).toContain('none');
  });

  it('refuses a process that changed root (it would load the code planted there, not the image\'s)', async () => {
    // Namespaces as skiff-launch makes them (mount and UTS as host root, then a user namespace
    // of its own), but its root is a directory with a /function of its own, not its mount
    // namespace's root, where the helper mounts the image's.
    const outer = path.join(fx.base, 'chrooted');
    fs.cpSync(fx.rootfs, outer, { recursive: true, verbatimSymlinks: true });
    fs.mkdirSync(path.join(outer, 'oldroot'));
    fs.cpSync(fx.rootfs, path.join(outer, 'inner'), { recursive: true, verbatimSymlinks: true });
    fs.writeFileSync(path.join(outer, 'inner', 'function', 'marker'), 'planted');
    const inside = "echo ready; read go; cat /function/marker 2>/dev/null || echo none";
    const script = `mount --bind ${outer} ${outer} && mount -t proc proc ${outer}/proc && cd ${outer} && pivot_root . oldroot && exec /bin/unshare -U -r /bin/chroot /inner /bin/sh -c '${inside}'`;
    const child = spawn('unshare', ['--mount', '--uts', '--propagation', 'private', 'sh', '-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const closed = new Promise((r) => child.on('close', r));
    await waitFor(() => out.includes('ready\n'), 'the process in its own root');
    const h = helper();
    expect(await h.ask(['adopt', child.pid!, starttime(child.pid!), 'chrooted', 0, source])).toMatch(/^error\t.*changed root\); refused/);
    h.child.stdin.end();
    child.stdin.end('go\n');
    await closed;
    expect(out.split('\n')).toContain('planted'); // what it would have run as the function's code
  });

  it('ends with status 2 on a malformed request', async () => {
    const h = helper();
    const code = new Promise((r) => h.child.on('exit', r));
    h.child.stdin.write('adopt\t1\t2\n');
    expect(await code).toBe(2);
  });
});
