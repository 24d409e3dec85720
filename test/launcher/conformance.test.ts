// What the OCI runtime-tools validation suite checks of a runtime, checked here with Skiff's own
// tests (the suite itself is not in the repository; services/launcher/README.md has its results):
// a seccomp profile without no_new_privs, namespaces joined by path or inherited, hooks, devices,
// the device cgroup, the memory settings, cgroup mounts, and settings refused by field.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultSeccompProfile } from '@skiff/worker';
import { Fixture, launcher, waitFor, type Config } from './fixture.js';

const fx = new Fixture();
const isRoot = process.getuid?.() === 0;
const cgroupV1 = fs.existsSync('/sys/fs/cgroup/memory/cgroup.procs');

beforeAll(() => fx.setup());
afterAll(() => fx.teardown());

/** Runs cfg (its process prints "== ready" then reads a line); probe runs on the host meanwhile. */
async function whileRunning<T>(cfg: Config, probe: (pid: number) => T) {
  const [dir, id] = fx.bundle(cfg);
  const child = spawn(launcher, ['--root', fx.stateRoot, 'run', '--bundle', dir, id], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  await waitFor(() => out.includes('== ready') || child.exitCode !== null, 'the container to be ready');
  const pid = JSON.parse(fx.cli('state', id).stdout || '{"pid":0}').pid as number;
  let seen: T;
  try {
    seen = probe(pid);
  } finally {
    child.stdin!.end('go\n');
  }
  const code = await exited;
  return { seen, code, out: out.replace('== ready\n', ''), err };
}

/** A process holding namespaces of its own, as `unshare` makes them, for configs to join. */
function holder(flags: string[]): ChildProcess {
  return spawn('unshare', [...flags, '--fork', 'sleep', '600'], { stdio: 'ignore', detached: true });
}

async function holderPid(h: ChildProcess): Promise<number> {
  const children = () => fs.readFileSync(`/proc/${h.pid}/task/${h.pid}/children`, 'utf8').trim();
  await waitFor(() => children() !== '', 'unshare to fork its child');
  return Number(children());
}

function mountsBelow(dir: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.startsWith(dir));
}

/** The worker's profile as older profiles were (Docker's before 2021): without close_range. */
function withoutCloseRange(): object {
  const p = defaultSeccompProfile() as { syscalls: Array<{ names: string[] }> };
  return { ...p, syscalls: p.syscalls.map((s) => ({ ...s, names: s.names.filter((n) => n !== 'close_range') })) };
}

describe.skipIf(!isRoot)('skiff-launch against what the OCI validation suite checks (needs root)', () => {
  it('loads a seccomp profile that denies unknown syscalls before the capability drop (noNewPrivileges false)', () => {
    const cfg = fx.config(['sh', '-c', 'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status']);
    cfg.process.noNewPrivileges = false;
    cfg.linux.seccomp = withoutCloseRange();
    const res = fx.run(cfg);
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    expect(res.stdout).toBe('NoNewPrivs:\t0\nSeccomp:\t2\n');
  });

  it('mounts and sets the hostname in mount and UTS namespaces joined by path', async () => {
    const h = holder(['--mount', '--uts']);
    try {
      const pid = await holderPid(h);
      const cfg = fx.config(['sh', '-c', 'readlink /proc/self/ns/mnt; readlink /proc/self/ns/uts; hostname; awk \'$5=="/proc" {print $(NF-2)}\' /proc/self/mountinfo']);
      cfg.linux.namespaces = cfg.linux.namespaces.filter((n: { type: string }) => n.type !== 'mount' && n.type !== 'uts');
      cfg.linux.namespaces.push({ type: 'mount', path: `/proc/${pid}/ns/mnt` }, { type: 'uts', path: `/proc/${pid}/ns/uts` });
      cfg.hostname = 'joined-uts';
      const res = fx.run(cfg);
      expect(res.stderr).toBe('');
      expect(res.stdout.split('\n')).toEqual([fs.readlinkSync(`/proc/${pid}/ns/mnt`), fs.readlinkSync(`/proc/${pid}/ns/uts`), 'joined-uts', 'proc', '']);
      // the hostname was set in the namespace it joined, not in one of its own
      expect(execFileSync('nsenter', ['-u', '-t', String(pid), 'hostname'], { encoding: 'utf8' })).toBe('joined-uts\n');
    } finally {
      process.kill(-h.pid!, 'SIGKILL');
    }
  });

  it('without a mount namespace of its own, mounts in the launcher\'s and removes them with the container', async () => {
    const cfg = fx.config(['sh', '-c', 'echo "== ready"; read x; awk \'$5=="/proc" || $5=="/tmp" {print $5, $(NF-2)}\' /proc/self/mountinfo']);
    // no mount namespace; no UTS namespace either (a hostname for the host's is refused, below),
    // nor a user namespace (the kernel gives none to a chrooted process, also refused below)
    cfg.linux.namespaces = cfg.linux.namespaces.filter((n: { type: string }) => !['mount', 'uts', 'user'].includes(n.type));
    delete cfg.hostname;
    delete cfg.linux.uidMappings;
    delete cfg.linux.gidMappings;
    const before = mountsBelow(fx.rootfs);
    const run = await whileRunning(cfg, () => mountsBelow(fx.rootfs));
    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    expect(run.out).toBe('/proc proc\n/tmp tmpfs\n');
    expect(run.seen.length).toBeGreaterThan(before.length); // made in this namespace
    expect(mountsBelow(fx.rootfs)).toEqual(before); // and gone with the container
    // create, then delete, does the same
    const { _id, ...created } = cfg;
    void _id;
    created.process = { ...cfg.process, args: ['true'] };
    const [dir, id] = fx.bundle(created);
    expect(fx.detached('create', '--bundle', dir, id).status).toBe(0);
    expect(mountsBelow(fx.rootfs).length).toBeGreaterThan(before.length);
    expect(fx.cli('delete', '--force', id).status).toBe(0);
    expect(mountsBelow(fx.rootfs)).toEqual(before);
  });

  it('refuses a hostname for a UTS namespace it would share with the host, and a user namespace without a mount namespace', () => {
    const res = fx.sh('true', (c) => (c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== 'uts')));
    expect(res.status).toBe(125);
    expect(res.stderr).toBe("skiff-launch: config.json: hostname: requires a uts namespace of the container's own in linux.namespaces\n");
    const chrooted = fx.sh('true', (c) => (c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== 'mount')));
    expect(chrooted.status).toBe(125);
    expect(chrooted.stderr).toBe('skiff-launch: config.json: linux.namespaces: a new user namespace needs a mount namespace of the container\'s own (new or joined): the kernel gives none to a chrooted process\n');
  });

  describe('hooks', () => {
    // the log is written by host root and by the container's user (startContainer)
    const logDir = () => {
      const d = fs.mkdtempSync(path.join(fx.base, 'hooks-'));
      fs.chmodSync(d, 0o777);
      fs.writeFileSync(path.join(d, 'log'), '', { mode: 0o666 });
      fs.chmodSync(path.join(d, 'log'), 0o666);
      return d;
    };
    // Each hook appends its name and the state it was given on stdin to one log.
    const hook = (name: string, log: string, sh = '/bin/sh') => ({
      path: sh,
      args: ['sh', '-c', `{ printf '%s ' ${name}; cat; echo; } >> ${log}`],
      env: ['PATH=/bin:/usr/bin'],
      timeout: 10,
    });
    const withHooks = (cfg: Config, dir: string) => {
      cfg.mounts.push({ destination: '/hooks', source: dir, options: ['bind', 'rw'] });
      cfg.annotations = { 'org.example.test': 'hooks' };
      cfg.hooks = {
        prestart: [hook('prestart', `${dir}/log`)],
        createRuntime: [hook('createRuntime', `${dir}/log`)],
        createContainer: [hook('createContainer', `${dir}/log`)],
        // resolved and run in the container, after the root switch
        startContainer: [hook('startContainer', '/hooks/log', '/bin/sh')],
        poststart: [hook('poststart', `${dir}/log`)],
        poststop: [hook('poststop', `${dir}/log`)],
      };
      return cfg;
    };
    // the hooks' lines (the process writes a bare "process")
    const entries = (dir: string) =>
      fs.readFileSync(`${dir}/log`, 'utf8').trim().split('\n').filter((l) => l.includes(' {')).map((line) => {
        const [name, ...json] = line.split(' ');
        return { name, state: JSON.parse(json.join(' ')) };
      });

    it('runs every kind in order, each with the state it is due, under `run`', () => {
      const dir = logDir();
      const res = fx.run(withHooks(fx.config(['sh', '-c', 'echo process >> /hooks/log']), dir));
      expect(res.stderr).toBe('');
      expect(res.status).toBe(0);
      const lines = fs.readFileSync(`${dir}/log`, 'utf8').trim().split('\n');
      const names = lines.map((l) => l.split(' ')[0]);
      // poststart runs once the process is exec'd; it may finish before or after it
      expect(names.filter((n) => n !== 'poststart')).toEqual(['prestart', 'createRuntime', 'createContainer', 'startContainer', 'process', 'poststop']);
      expect(names.indexOf('poststart')).toBeGreaterThan(names.indexOf('startContainer'));
      const seen = entries(dir);
      const pid = seen[0].state.pid;
      expect(pid).toBeGreaterThan(1);
      const byName = Object.fromEntries(seen.map((e) => [e.name, e.state]));
      expect(byName.prestart).toMatchObject({ id: res.id, status: 'creating', pid, bundle: res.dir, annotations: { 'org.example.test': 'hooks' } });
      expect(byName.createRuntime).toMatchObject({ status: 'creating', pid });
      expect(byName.createContainer).toMatchObject({ status: 'creating', pid });
      expect(byName.startContainer).toMatchObject({ status: 'created', pid });
      expect(byName.poststart).toMatchObject({ status: 'running', pid });
      expect(byName.poststop).toMatchObject({ id: res.id, status: 'stopped', pid: 0 });
    });

    it('runs poststart at start and poststop at delete, from what create kept, with create, start and delete', async () => {
      const dir = logDir();
      const cfg = withHooks(fx.config(['sh', '-c', 'echo process >> /hooks/log']), dir);
      const [bundle, id] = fx.bundle(cfg);
      expect(fx.detached('create', '--bundle', bundle, id).status).toBe(0);
      expect(entries(dir).map((e) => e.name)).toEqual(['prestart', 'createRuntime', 'createContainer']);
      expect(JSON.parse(fx.cli('state', id).stdout).annotations).toEqual({ 'org.example.test': 'hooks' });
      fs.writeFileSync(path.join(bundle, 'config.json'), '{}'); // changing the bundle now changes nothing
      expect(fx.cli('start', id)).toMatchObject({ status: 0, stderr: '' });
      // start returns once the process was exec'd and poststart has run
      expect(entries(dir).map((e) => e.name)).toContain('poststart');
      await waitFor(() => JSON.parse(fx.cli('state', id).stdout).status === 'stopped', 'the process to end');
      expect(fx.cli('delete', id)).toMatchObject({ status: 0, stderr: '' });
      const names = entries(dir).map((e) => e.name);
      expect(names.slice(0, 4)).toEqual(['prestart', 'createRuntime', 'createContainer', 'startContainer']);
      expect(names.at(-1)).toBe('poststop');
      expect(entries(dir).find((e) => e.name === 'poststart')!.state.status).toBe('running');
    });

    it('a failing prestart hook fails the container, names the hook, and poststop still runs', () => {
      const dir = logDir();
      const cfg = withHooks(fx.config(['sh', '-c', 'echo process >> /hooks/log']), dir);
      cfg.hooks.prestart = [{ path: '/bin/sh', args: ['sh', '-c', 'exit 3'] }];
      const res = fx.run(cfg);
      expect(res.status).toBe(125);
      expect(res.stderr).toBe('skiff-launch: hooks.prestart[0] /bin/sh: exited with status 3\n');
      expect(entries(dir).map((e) => e.name)).toEqual(['poststop']);
      expect(fs.existsSync(path.join(fx.stateRoot, res.id))).toBe(false);
    });

    it('a hook past its timeout is killed; a failing poststart hook is a warning and the container runs', () => {
      const slow = fx.config(['true']);
      slow.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', 'sleep 30'], timeout: 1 }] };
      const timedOut = fx.run(slow);
      expect(timedOut.status).toBe(125);
      expect(timedOut.stderr).toBe('skiff-launch: hooks.createRuntime[0] /bin/sh: timed out after 1 s\n');
      const warned = fx.config(['echo', 'ran']);
      warned.hooks = { poststart: [{ path: '/bin/false' }] };
      const res = fx.run(warned);
      expect(res.status).toBe(0);
      expect(res.stdout).toBe('ran\n');
      expect(res.stderr).toBe('skiff-launch: warning: hooks.poststart[0] /bin/false: exited with status 1\n');
    });
  });

  it('makes linux.devices nodes with their type, numbers, mode and owner', () => {
    const cfg = fx.config(['sh', '-c', 'stat -c "%n %F %t:%T %a %u:%g" /dev/zero2 /dev/fifo; head -c 3 /dev/zero2 | wc -c']);
    cfg.linux.devices = [
      { path: '/dev/zero2', type: 'c', major: 1, minor: 5, fileMode: 0o640, uid: 0, gid: 8 },
      { path: '/dev/fifo', type: 'p', fileMode: 0o600 },
    ];
    const res = fx.run(cfg);
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('/dev/zero2 character special file 1:5 640 0:8\n/dev/fifo fifo 0:0 600 0:0\n3\n');
  });

  describe.skipIf(!cgroupV1)('the device cgroup (cgroup v1 here; v2 in cgroup-v2-vm.test.ts)', () => {
    // A device node the container may open as far as file modes go (0666), bound in: only the
    // device cgroup stands between it and the device (tun: opening it needs no privilege).
    const tun = () => {
      const node = path.join(fx.base, 'tun-node');
      if (!fs.existsSync(node)) execFileSync('mknod', ['-m', '666', node, 'c', '10', '200']);
      return node;
    };
    const openTun = (rules?: object[]) => {
      const cfg = fx.config(['sh', '-c', '(exec 3<>/dev/tun) && echo opened; head -c 1 /dev/zero | wc -c']);
      cfg.mounts.push({ destination: '/dev/tun', source: tun(), options: ['bind'] });
      if (rules) cfg.linux.resources.devices = rules;
      return fx.run(cfg);
    };

    it('denies a device the rules do not allow, and keeps the default devices usable', () => {
      const open = openTun();
      expect(open.stderr).toBe('');
      expect(open.stdout).toBe('opened\n1\n'); // no rules: the parent's allow-all
      const denied = openTun([{ allow: false, access: 'rwm' }]);
      expect(denied.stdout).toBe('1\n'); // /dev/zero still usable
      expect(denied.stderr).toBe("sh: can't create /dev/tun: Operation not permitted\n");
      const allowed = openTun([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 200, access: 'rw' }]);
      expect(allowed.stdout).toBe('opened\n1\n');
    });

    it('writes the rules in order into devices.allow and devices.deny', async () => {
      const cfg = fx.config(['sh', '-c', 'echo "== ready"; read x']);
      cfg.linux.resources.devices = [{ allow: false, access: 'rwm' }, { allow: true, type: 'b', major: 8, minor: 0, access: 'r' }];
      const run = await whileRunning(cfg, () => fs.readFileSync(`/sys/fs/cgroup/devices${cfg.linux.cgroupsPath}/devices.list`, 'utf8'));
      expect(run.code).toBe(0);
      expect(run.seen.split('\n')).toEqual(expect.arrayContaining(['b 8:0 r', 'c 1:3 rwm', 'c 136:* rwm']));
      expect(run.seen).not.toContain('a *:* rwm');
    });
  });

  it.skipIf(!cgroupV1)('applies memory reservation, swappiness, kernelTCP and disableOOMKiller (cgroup v1)', async () => {
    const cfg = fx.config(['sh', '-c', 'echo "== ready"; read x']);
    cfg.linux.resources.memory = {
      limit: 64 << 20, swap: 64 << 20, reservation: 32 << 20, kernel: 64 << 20, kernelTCP: 16 << 20,
      swappiness: 7, disableOOMKiller: true, useHierarchy: true,
    };
    const dir = `/sys/fs/cgroup/memory${cfg.linux.cgroupsPath}`;
    const run = await whileRunning(cfg, () => ['memory.soft_limit_in_bytes', 'memory.kmem.tcp.limit_in_bytes', 'memory.swappiness', 'memory.oom_control']
      .map((f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n')[0]));
    expect(run.err).toBe('');
    expect(run.seen).toEqual([String(32 << 20), String(16 << 20), '7', 'oom_kill_disable 1']);
  });

  it('refuses a kernel memory limit below the memory limit (the kernel would not enforce it)', () => {
    const res = fx.sh('true', (c) => (c.linux.resources.memory.kernel = 1 << 20));
    expect(res.status).toBe(125);
    expect(res.stderr).toMatch(/^skiff-launch: config\.json: linux\.resources\.memory\.kernel: a kernel memory limit below memory\.limit is not enforced/);
  });

  it('mounts its own cgroup read-only at a cgroup mount, with and without a cgroup namespace', () => {
    for (const cgroupns of [true, false]) {
      const cfg = fx.config(['sh', '-c', cgroupV1
        ? 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; ls /sys/fs/cgroup/memory | grep -c "^skiff"; touch /sys/fs/cgroup/pids/x 2>/dev/null || echo read-only'
        : 'cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; ls /sys/fs/cgroup | grep -c "^skiff"; touch /sys/fs/cgroup/x 2>/dev/null || echo read-only']);
      cfg.mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] });
      if (!cgroupns) cfg.linux.namespaces = cfg.linux.namespaces.filter((n: { type: string }) => n.type !== 'cgroup');
      const res = fx.run(cfg);
      expect(res.stderr, `cgroupns ${cgroupns}`).toBe('');
      // its own limits, no other cgroup below it, and nothing it can change
      expect(res.stdout, `cgroupns ${cgroupns}`).toBe(`${128 << 20}\n128\n0\nread-only\n`);
    }
  });

  it('refuses AppArmor profiles and SELinux labels by name, and creates nothing', () => {
    const cases: Array<[string, (c: Config) => void]> = [
      ['process.apparmorProfile: AppArmor is not supported by skiff-launch; refused rather than run unconfined', (c) => (c.process.apparmorProfile = 'docker-default')],
      ['process.selinuxLabel: SELinux is not supported by skiff-launch; refused rather than run unlabelled', (c) => (c.process.selinuxLabel = 'system_u:system_r:container_t:s0')],
      ['linux.mountLabel: SELinux is not supported by skiff-launch; refused rather than mount unlabelled', (c) => (c.linux.mountLabel = 'system_u:object_r:container_file_t:s0')],
    ];
    for (const [message, edit] of cases) {
      const res = fx.sh('echo ran', edit);
      expect(res.status).toBe(125);
      expect(res.stdout).toBe('');
      expect(res.stderr).toBe(`skiff-launch: config.json: ${message}\n`);
      expect(fs.existsSync(path.join(fx.stateRoot, res.id))).toBe(false);
    }
    // an empty label asks for nothing
    expect(fx.sh('echo ran', (c) => (c.process.apparmorProfile = '')).stdout).toBe('ran\n');
  });

  it('loads a profile that denies getcwd without no_new_privs: the cwd is checked before the filter', () => {
    const cfg = fx.config(['sh', '-c', 'cd /tmp && pwd']);
    cfg.process.noNewPrivileges = false;
    cfg.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getcwd'], action: 'SCMP_ACT_ERRNO' }] };
    const res = fx.run(cfg);
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('/tmp\n'); // busybox falls back to $PWD
  });

  it('a config without a process can be created, not started; delete refuses what is not stopped without --force', () => {
    const cfg = fx.config(['true']);
    delete cfg.process;
    const [dir, id] = fx.bundle(cfg);
    expect(fx.detached('create', '--bundle', dir, id).status).toBe(0);
    expect(fx.cli('start', id)).toMatchObject({ status: 125, stderr: `skiff-launch: start ${id}: its config.json has no process to run\n` });
    expect(fx.cli('delete', id)).toMatchObject({ status: 125, stderr: `skiff-launch: delete ${id}: container is created; stop it first or use --force\n` });
    expect(JSON.parse(fx.cli('state', id).stdout).status).toBe('created');
    expect(fx.cli('delete', '--force', id).status).toBe(0);
    expect(fx.run(cfg).stderr).toBe('skiff-launch: config.json: process: required to run a container\n');
  });

  it('kill --all signals every process of the container, not only its init', async () => {
    // sh as PID 1 of its namespace ignores TERM; only its children can end it
    const [dir, id] = fx.bundle(fx.config(['sh', '-c', 'sleep 300 & sleep 300; wait']));
    expect(fx.detached('create', '--bundle', dir, id).status).toBe(0);
    expect(fx.cli('start', id).status).toBe(0);
    const procs = () => fs.readFileSync(`/sys/fs/cgroup/${cgroupV1 ? 'memory/' : ''}skiff-test/${id}/cgroup.procs`, 'utf8').trim().split('\n').length;
    await waitFor(() => procs() === 3, 'both sleeps to start');
    expect(fx.cli('kill', '--all', id, 'TERM')).toMatchObject({ status: 0, stderr: '' });
    await waitFor(() => JSON.parse(fx.cli('state', id).stdout).status === 'stopped', 'the container to stop');
    expect(fx.cli('delete', id).status).toBe(0);
  });

  describe('bundles the runtimes write with `spec` run unchanged', () => {
    const specBundle = (tool: string) => {
      const dir = fs.mkdtempSync(path.join(fx.base, `spec-${path.basename(tool)}-`));
      const res = spawnSync(tool, ['spec'], { cwd: dir, encoding: 'utf8' });
      expect(res.status, `${tool} spec: ${res.stderr}`).toBe(0);
      const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
      cfg.root.path = fx.rootfs; // the only changes: a root, no terminal, and what to run
      cfg.process.terminal = false;
      cfg.process.args = ['sh', '-c', 'echo "hostname $(hostname)"; grep ^CapEff /proc/self/status; cat /proc/self/cgroup | grep -c :memory:'];
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
      return dir;
    };
    for (const tool of ['/usr/sbin/runc', '/usr/bin/crun', launcher]) {
      it.skipIf(!fs.existsSync(tool))(`${path.basename(tool)} spec`, () => {
        const dir = specBundle(tool);
        const id = `spec${process.pid}-${path.basename(tool)}`;
        fx.ids.push(id);
        const res = spawnSync(launcher, ['--root', fx.stateRoot, 'run', '--bundle', dir, id], { encoding: 'utf8' });
        expect(res.status, res.stderr).toBe(0);
        const name = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).hostname;
        expect(res.stdout).toMatch(new RegExp(`^hostname ${name}\nCapEff:\t[0-9a-f]{16}\n1\n$`));
        // runc's and crun's defaults list ambient capabilities the kernel cannot keep: said, not hidden
        if (tool !== launcher) expect(res.stderr).toBe('skiff-launch: warning: process.capabilities.ambient: CAP_KILL CAP_NET_BIND_SERVICE CAP_AUDIT_WRITE not raised: an ambient capability must also be permitted and inheritable\n');
      });
    }
  });
});
