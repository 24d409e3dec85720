// docs/security.md #14, #15 and #17 for the launcher (#16's launcher half is in
// test/launcher/isolation.test.ts): forbidden syscalls, capabilities and no_new_privs; masked
// and read-only kernel interfaces; container root as an unprivileged, per-function host uid.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Fixture, launcher, nextHostId, waitFor } from '../launcher/fixture.js';

const fx = new Fixture();
const probeSrc = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/sysprobe.c');

beforeAll(() => {
  fx.setup();
  execFileSync('cc', ['-static', '-O1', '-o', path.join(fx.rootfs, 'bin/sysprobe'), probeSrc]);
});
afterAll(() => fx.teardown());

const probeResult = (res: { stdout: string; stderr: string }): Record<string, number> => {
  expect(res.stderr).toBe('');
  return Object.fromEntries(res.stdout.trim().split('\n').map((l) => [l.split('=')[0], Number(l.split('=')[1])]));
};

function probe(edit?: (c: any) => void): Record<string, number> {
  const cfg = fx.config(['/bin/sysprobe']);
  edit?.(cfg);
  return probeResult(fx.run(cfg));
}

const FORBIDDEN = ['mount', 'umount2', 'unshare', 'setns', 'keyctl', 'add_key', 'bpf', 'perf_event_open', 'userfaultfd',
  'io_uring_setup', 'ptrace', 'name_to_handle_at', 'open_by_handle_at', 'pivot_root', 'kexec_load', 'init_module',
  'swapoff', 'reboot', 'settimeofday', 'personality_bad', 'clone_newnet'];

function expectRefused(got: Record<string, number>): void {
  const EPERM = 1;
  for (const name of FORBIDDEN) expect(got[name], name).toBe(EPERM);
  expect(got.clone3).toBe(38); // ENOSYS, so libcs fall back to clone and its flag check
  expect(got.fork).toBe(0); // ordinary processes still work
}

const STATUS_LINES = 'grep -E "^(Cap|NoNewPrivs|Seccomp:)" /proc/self/status';
const CONFINED = {
  CapInh: '0000000000000000', CapPrm: '0000000000000000', CapEff: '0000000000000000',
  CapBnd: '0000000000000000', CapAmb: '0000000000000000', NoNewPrivs: '1', Seccomp: '2',
};
const statusOf = (stdout: string) => Object.fromEntries(stdout.trim().split('\n').map((l) => l.split(/:\s+/)));

describe('14: forbidden syscalls, no capabilities, no_new_privs', () => {
  it('refuses mount, unshare, setns, keyctl, bpf, perf_event_open, userfaultfd, io_uring, ptrace, open_by_handle_at, namespace clones', () => {
    expectRefused(probe());
  });

  it('is the seccomp profile that refuses them: without it several succeed', () => {
    // Guards the test above against passing for another reason.
    const got = probe((c) => delete c.linux.seccomp);
    expect(got.unshare === 0 || got.keyctl === 0 || got.clone_newnet === 0).toBe(true);
  });

  it('has CapEff 0 (and every other set empty) and NoNewPrivs 1', () => {
    expect(statusOf(fx.sh(STATUS_LINES).stdout)).toEqual(CONFINED);
  });

  // The worker starts exec functions through launchers started ahead, whose init is cloned
  // before the config exists and gets it, the root and the seccomp BPF afterwards.
  it('confines a process started through a launcher started ahead (--wait-fd) just the same', async () => {
    expectRefused(probeResult(await fx.runAhead(fx.config(['/bin/sysprobe']))));
    expect(statusOf((await fx.runAhead(fx.config(['sh', '-c', STATUS_LINES]))).stdout)).toEqual(CONFINED);
  });
});

describe('15: masked and read-only kernel interfaces', () => {
  it('masks /proc/kcore, /proc/keys and /sys/firmware', () => {
    const res = fx.sh('cat /proc/keys | wc -c; ls -A /sys/firmware | wc -l; cat /proc/kcore 2>/dev/null | wc -c; grep -E " /(proc/keys|sys/firmware) " /proc/self/mountinfo | wc -l');
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('0\n0\n0\n2\n');
    // the host has content there, so the masks are what hides it
    expect(fs.readFileSync('/proc/keys', 'utf8').length).toBeGreaterThan(0);
    expect(fs.readdirSync('/sys/firmware').length).toBeGreaterThan(0);
  });

  it('keeps /proc/sys and /proc/sysrq-trigger read-only', () => {
    const res = fx.sh('echo 1 > /proc/sys/kernel/ns_last_pid; echo "rc=$?"; grep -E " /proc/sys " /proc/self/mountinfo | grep -c " ro,"; test -e /proc/sysrq-trigger && { echo h > /proc/sysrq-trigger; echo "sysrq=$?"; } || echo sysrq=absent');
    expect(res.stdout).toMatch(/^rc=1\n1\nsysrq=(1|absent)\n$/);
    expect(res.stderr).toContain('Read-only file system');
  });

  it('masks and keeps read-only the same through a launcher started ahead (--wait-fd)', async () => {
    const res = await fx.runAhead(fx.config(['sh', '-c', 'cat /proc/keys | wc -c; ls -A /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/ns_last_pid; echo "rc=$?"']));
    expect(res.stdout).toBe('0\n0\nrc=1\n');
    expect(res.stderr).toContain('Read-only file system');
  });

  it('cannot lift the masks: the mounts belong to the host, not the container user namespace', () => {
    const res = fx.sh('umount /proc/keys; umount /sys/firmware; cat /proc/keys | wc -c', (c) => delete c.linux.seccomp);
    expect(res.stdout).toBe('0\n');
  });
});

describe('17: container root is an unprivileged host uid, distinct per function', () => {
  async function hostUid(hostId: number): Promise<{ uid: number; gid: number; fileUid: number }> {
    const shared = fs.mkdtempSync(path.join(fx.base, 'shared-'));
    fs.chmodSync(shared, 0o777);
    const cfg = fx.config(['sh', '-c', 'touch /shared/made; exec sleep 30'], { hostId });
    cfg.mounts.push({ destination: '/shared', type: 'bind', source: shared, options: ['rbind', 'rw'] });
    const [dir, id] = fx.bundle(cfg);
    const pidFile = path.join(fx.base, `${id}.pid`);
    fx.ids.push(id);
    const child = spawn(launcher, ['--root', fx.stateRoot, 'run', '-b', dir, '--pid-file', pidFile, id], { stdio: 'ignore' });
    try {
      await waitFor(() => fs.existsSync(pidFile) && fs.existsSync(path.join(shared, 'made')), 'container');
      const pid = Number(fs.readFileSync(pidFile, 'utf8'));
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)![1]);
      const gid = Number(/^Gid:\s+(\d+)/m.exec(status)![1]);
      return { uid, gid, fileUid: fs.statSync(path.join(shared, 'made')).uid };
    } finally {
      const exited = new Promise((r) => child.on('exit', r));
      child.kill('SIGKILL'); // the container dies with it (parent-death signal); teardown deletes the state
      await exited;
    }
  }

  it('shows the mapped host uid from outside, for the process and for files it creates', async () => {
    const a = nextHostId();
    const seen = await hostUid(a);
    expect(seen).toEqual({ uid: a, gid: a, fileUid: a });
    expect(a).toBeGreaterThanOrEqual(1_000_000);
  });

  it('gives two functions with different mappings different host uids', async () => {
    const [a, b] = [nextHostId(), nextHostId()];
    const [sa, sb] = [await hostUid(a), await hostUid(b)];
    expect(sa.uid).toBe(a);
    expect(sb.uid).toBe(b);
    expect(sa.uid).not.toBe(sb.uid);
  });
});
