// The full isolation profile under skiff-launch: user namespace mapping, cgroup limits enforced
// for real, and the lifecycle commands (create/start/state/kill/delete, spec, features).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cgroupDir, cgroupDirs, cgroupLimits, cgroupStat, existingCgroupDirs, ownCgroupLines } from '@skiff/testkit';
import { Fixture, launcher, nextHostId, waitFor } from './fixture.js';

const fx = new Fixture();
beforeAll(() => fx.setup());
afterAll(() => fx.teardown());

describe('user namespace', () => {
  it('maps container root to the configured host range and back', () => {
    const hostId = nextHostId();
    const res = fx.sh('id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/f; stat -c %u /tmp/f', (c) => {
      c.linux.uidMappings[0].hostID = hostId;
      c.linux.gidMappings[0].hostID = hostId;
    });
    expect(res.stderr).toBe('');
    const lines = res.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    expect(lines).toEqual(['0', '0', `0 ${hostId} 65536`, `0 ${hostId} 65536`, '0']);
  });

  it('runs a non-root process.user inside the mapped range', () => {
    const res = fx.sh('id -u; id -g; id -G', (c) => (c.process.user = { uid: 1000, gid: 1000, additionalGids: [5] }));
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('1000\n1000\n1000 5\n');
  });

  it('refuses a process.user outside the mapping, naming the field', () => {
    const res = fx.sh('true', (c) => (c.process.user = { uid: 70000, gid: 0 }));
    expect(res.status).toBe(125);
    expect(res.stderr).toContain('process.user.uid: 70000 is not mapped by linux.uidMappings');
  });
});

describe('cgroup limits', () => {
  it('kills a memory balloon at the limit and reports out of memory on stderr', () => {
    const res = fx.sh('exec dd if=/dev/zero of=/dev/null bs=96M count=1', (c) => {
      c.linux.resources.memory = { limit: 32 << 20, swap: 32 << 20 };
    });
    expect(res.status).toBe(137);
    expect(res.stderr).toContain(`skiff-launch: ${res.id}: out of memory (memory limit ${32 << 20} bytes)\n`);
    expect(res.stderr.match(/out of memory/g)).toHaveLength(1);
  });

  it('lets the same allocation through under a larger limit (the limit is what stopped it)', () => {
    const res = fx.sh('dd if=/dev/zero of=/dev/null bs=24M count=1 2>/dev/null; echo survived', (c) => {
      c.linux.resources.memory = { limit: 96 << 20, swap: 96 << 20 };
    });
    expect(res.stdout).toBe('survived\n');
    expect(res.stderr).toBe('');
  });

  it('stops a fork bomb at the pids limit and reports it on stderr', () => {
    // The sleeps outlive the count however slowly the 60 forks go; they end with the container.
    const bomb = 'i=0; while [ $i -lt 60 ]; do sleep 3600 & i=$((i+1)); done; set -- /proc/[0-9]*; echo "$# processes"';
    const res = fx.sh(bomb, (c) => (c.linux.resources.pids = { limit: 16 }));
    expect(res.status).not.toBe(0);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain("can't fork");
    expect(res.stderr).toContain(`skiff-launch: ${res.id}: process limit reached (pids limit 16)\n`);
    // the same script under a limit above what it needs runs to the end
    const ok = fx.sh(bomb, (c) => (c.linux.resources.pids = { limit: 100 }));
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toBe('61 processes\n');
  });

  it('throttles the CPU to the quota', async () => {
    // The shell spins (no forks) until it has used 0.1 s of CPU, its utime + stime in
    // /proc/self/stat (1/100 s). At 10 ms a period that takes at least ten periods, and the
    // kernel counts each one that ran out of quota in cpu.stat: however loaded the machine,
    // a quota that is applied shows there, and none that is not.
    const spin = 'while :; do read -r s < /proc/self/stat; set -- $s; [ $((${14} + ${15})) -ge 10 ] && break; done; echo "== ready"; read x';
    const cfg = fx.config(['sh', '-c', spin]);
    cfg.linux.resources.cpu = { quota: 10000, period: 100000 };
    const path = cfg.linux.cgroupsPath;
    const res = await fx.runHeld(cfg, () => ({ limits: cgroupLimits(path), throttled: cgroupStat(path, 'cpu', 'cpu.stat', 'nr_throttled') }));
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    expect(res.held.limits).toMatchObject({ cpuQuota: '10000', cpuPeriod: '100000' });
    expect(res.held.throttled).toBeGreaterThan(0);
  });

  // The launcher makes and enters the cgroup while the init sets up its mounts; the init waits for
  // it before its cgroup namespace (and so before exec). strace holds the launcher's write to
  // cgroup.procs back, so an init that did not wait would see the cgroup from outside.
  it.skipIf(spawnSync('strace', ['-V']).status !== 0)('enters the cgroup before its cgroup namespace, however late the launcher is (skipped where strace is not installed)', () => {
    const own = ownCgroupLines();
    const cfg = fx.config(['sh', '-c', `grep -E "${own.pattern}" /proc/self/cgroup`]);
    const [dir, id] = fx.bundle(cfg);
    // the first cgroup.procs the launcher writes (v1: memory's, then the others)
    const procs = path.join(cgroupDir(cfg.linux.cgroupsPath, 'memory'), 'cgroup.procs');
    const res = spawnSync('strace', ['-qq', '-o', '/dev/null', '-P', procs, '-e', 'inject=openat:delay_enter=300000', launcher, '--root', fx.stateRoot, 'run', '--bundle', dir, id], { encoding: 'utf8' });
    expect(res.stderr).toBe('');
    const lines = res.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(own.count);
    for (const l of lines) expect(l).toMatch(/:\/$/);
  });

  it('removes the cgroup it created when the container exits', async () => {
    const cfg = fx.config(['sh', '-c', 'echo "== ready"; read x']);
    const dirs = cgroupDirs(cfg.linux.cgroupsPath);
    const res = await fx.runHeld(cfg, () => existingCgroupDirs(cfg.linux.cgroupsPath));
    expect(res.status).toBe(0);
    expect(res.held, 'while it ran').toEqual(dirs);
    expect(existingCgroupDirs(cfg.linux.cgroupsPath)).toEqual([]);
    expect(fs.existsSync(path.join(fx.stateRoot, res.id))).toBe(false);
  });
});

describe('lifecycle commands', () => {
  it('create, state, start, kill, state, delete', async () => {
    const cfg = fx.config(['sh', '-c', 'echo started > /tmp/x; trap "exit 3" TERM; while true; do sleep 0.05; done']);
    const [dir, id] = fx.bundle(cfg);
    const pidFile = path.join(fx.base, `${id}.pid`);
    const created = fx.detached('create', '--bundle', dir, '--pid-file', pidFile, id);
    expect(created.stderr).toBe('');
    expect(created.status).toBe(0);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    let state = JSON.parse(fx.cli('state', id).stdout);
    expect(state).toMatchObject({ ociVersion: '1.0.2', id, status: 'created', pid, bundle: dir });
    // created: the process is not running the container's program yet
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).not.toContain('sh');
    expect(fx.detached('start', id).status).toBe(0);
    await waitFor(() => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sh'), 'exec after start');
    state = JSON.parse(fx.cli('state', id).stdout);
    expect(state.status).toBe('running');
    expect(fx.detached('start', id).stderr).toContain('not created');
    const del = fx.cli('delete', id);
    expect(del.status).not.toBe(0);
    expect(del.stderr).toContain('running');
    expect(fx.cli('kill', id, 'TERM').status).toBe(0);
    await waitFor(() => JSON.parse(fx.cli('state', id).stdout).status === 'stopped', 'stopped');
    expect(fx.cli('delete', id).status).toBe(0);
    expect(fx.cli('state', id).stderr).toContain('does not exist');
    expect(existingCgroupDirs(cfg.linux.cgroupsPath)).toEqual([]);
  });

  it('kill takes signal numbers; delete --force stops a running container', async () => {
    const [dir, id] = fx.bundle(fx.config(['sleep', '60']));
    expect(fx.detached('create', '-b', dir, id).status).toBe(0);
    expect(fx.detached('start', id).status).toBe(0);
    expect(fx.cli('kill', id, 'NOTASIGNAL').stderr).toContain('unknown signal');
    expect(fx.cli('kill', id, '0').status).not.toBe(0);
    const pid = JSON.parse(fx.cli('state', id).stdout).pid;
    expect(fx.cli('delete', '--force', id).status).toBe(0);
    expect(fs.existsSync(`/proc/${pid}/stat`) && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')).toBe(false);
    expect(fx.cli('delete', '--force', id).status).toBe(0); // idempotent
  });

  it('refuses a second container with the same ID', () => {
    const [dir, id] = fx.bundle(fx.config(['true']));
    expect(fx.detached('create', '-b', dir, id).status).toBe(0);
    const again = fx.detached('create', '-b', dir, id);
    expect(again.status).toBe(125);
    expect(again.stderr).toContain('already exists');
    expect(fx.cli('delete', id).status).toBe(125); // not stopped: refused without --force (OCI delete)
    expect(fx.cli('delete', '--force', id).status).toBe(0);
  });

  it('run exits with the status, or 128+N when killed by signal N, and state works meanwhile', async () => {
    const [dir, id] = fx.bundle(fx.config(['sleep', '60']));
    const child = spawn(launcher, ['--root', fx.stateRoot, 'run', '-b', dir, id], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitFor(() => fx.cli('state', id).stdout.includes('"running"'), 'running');
    expect(fx.cli('kill', id, '9').status).toBe(0);
    expect(await exited).toBe(137);
    expect(fs.existsSync(path.join(fx.stateRoot, id))).toBe(false);
  });

  it('reuses the ID of a container whose launcher was SIGKILLed, once its init is gone', async () => {
    const [dir, id] = fx.bundle(fx.config(['sleep', '60']));
    const pidFile = path.join(fx.base, `${id}.pid`);
    const child = spawn(launcher, ['--root', fx.stateRoot, 'run', '-b', dir, '--pid-file', pidFile, id], { stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    await waitFor(() => fs.existsSync(pidFile), 'pid file');
    child.kill('SIGKILL');
    await exited;
    await waitFor(() => JSON.parse(fx.cli('state', id).stdout).status === 'stopped', 'init to die');
    const next = fx.config(['true']);
    next._id = id; // same ID, same bundle dir, a config that exits at once
    const [dir2] = fx.bundle(next);
    const res = spawnSync(launcher, ['--root', fx.stateRoot, 'run', '-b', dir2, id], { encoding: 'utf8', input: '' });
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    expect(fs.existsSync(path.join(fx.stateRoot, id))).toBe(false);
  });

  it('spec prints a config that runs; features lists what is supported', () => {
    const spec = fx.cli('spec', '--bundle', '-');
    expect(spec.status).toBe(0);
    const cfg = JSON.parse(spec.stdout);
    expect(cfg.ociVersion).toMatch(/^1\./);
    cfg.root.path = fx.rootfs;
    cfg.process.args = ['echo', 'from spec'];
    const res = fx.run(cfg);
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('from spec\n');
    const features = JSON.parse(fx.cli('features').stdout);
    expect(features.hooks).toEqual(['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
    expect(features.linux.namespaces).toContain('user');
    expect(features.linux.apparmor.enabled).toBe(false);
    expect(features.linux.selinux.enabled).toBe(false);
    expect(features.linux.cgroup).toMatchObject({ v1: true, v2: true });
    expect(features.linux.seccomp.enabled).toBe(true);
  });

  it('rejects unknown commands and bad configs with the field named', () => {
    expect(fx.cli('pause', 'x').stderr).toContain('unknown command "pause"');
    const res = fx.sh('true', (c) => (c.linux.resources.memory.limit = 'lots'));
    expect(res.status).toBe(125);
    expect(res.stderr).toBe('skiff-launch: config.json: linux.resources.memory.limit: must be an integer\n');
  });
});
