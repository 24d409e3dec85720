// cgroup v2 for real. This host has v1 controllers, so the launcher's v2 code would otherwise
// run only on the fake trees of its C unit tests. Here it runs on a real unified hierarchy: a
// VM (infra/vm/vm.sh) boots Debian's kernel under qemu, mounts cgroup2 at /sys/fs/cgroup as
// systemd leaves it, and runs skiff-launch on bundles this file writes with the worker's own
// runtimeSpec (seven namespaces, user namespace, seccomp, limits). One boot runs every
// scenario; each prints one result line on the VM's second serial port, decoded here.
//
// A scenario is a container script and its limits. The script calls `gate NAME` where the VM
// should look: the VM then reads the scenario's `read` files of the container's cgroup into
// `at.NAME.<file>` and lets it go on. To add one, add an entry to SCENARIOS and its `it`.
// SKIFF_TEST_LAUNCHER=<path> runs the VM with another launcher build (e.g. a sabotaged one).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_SETTINGS, type RunSettings } from '@skiff/contracts';
import type { ImageConfig } from '@skiff/image';
import { defaultSeccompProfile, runtimeSpec } from '@skiff/worker';
import { launcher, launcherDir, repo, type Config } from './fixture.js';

const root = process.getuid?.() === 0;
const FN = 'vmtest';
const MIB = 1024 * 1024;
const VM_TIMEOUT_S = 240;

interface Scenario {
  name: string;
  /** /bin/sh script of the container's process. */
  script: string;
  /** Files of the container's cgroup the VM reads at each gate. */
  read: string[];
  settings?: Partial<RunSettings>;
  edit?: (spec: Config) => void;
  /** Shell command the VM runs before the scenario. */
  setup?: string;
}

// A device any process may open for writing as far as file modes go (/dev/kmsg's numbers, mode
// 0666), bound into the container: only the device cgroup (an eBPF program on v2) stands
// between the container and it.
const KMSG_NODE = 'mknod -m 666 /tmp/kmsg-node c 1 11';
const withKmsg = (devices: object[]) => (spec: Config) => {
  spec.mounts.push({ destination: '/dev/kmsg2', source: '/tmp/kmsg-node', options: ['bind'] });
  spec.linux.resources.devices = devices;
};
const OPEN_KMSG = 'gate limits || exit; (exec 3>/dev/kmsg2) && echo opened; head -c 2 /dev/zero | wc -c';

const SCENARIOS: Scenario[] = [
  {
    // Doubles a string up to 64 MiB (and awk copies it as it goes): OOM-killed at a 32 MiB
    // limit; without one it prints and exits 0. exec: the killed process is the container's
    // PID 1, so the launcher's exit status is its SIGKILL.
    name: 'memory',
    settings: { memoryMb: 32 },
    read: ['memory.max', 'memory.swap.max'],
    script: `gate limits || exit; exec awk 'BEGIN { s = "x"; for (i = 0; i < 26; i++) s = s s; print "allocated", length(s) }'`,
  },
  {
    // Starts 32 sleeping processes, or as many as pids.max lets it: the shell gives up at the
    // first fork that fails. Its exit ends the PID namespace, and the sleeps with it.
    name: 'pids',
    settings: { maxProcesses: 8 },
    read: ['pids.max'],
    script: 'gate limits || exit; i=0; while [ $i -lt 32 ]; do sleep 30 & i=$((i + 1)); done; echo "forked $i"',
  },
  {
    // Spins until the shell has used 250 ms of CPU time (25 ticks of utime + stime in
    // /proc/1/stat), more than four periods' quota: the kernel must have throttled it.
    name: 'cpu',
    edit: (spec) => (spec.linux.resources.cpu = { quota: 30000, period: 60000, shares: 512 }),
    read: ['cpu.max', 'cpu.weight', 'cpu.stat'],
    script: 'gate limits || exit; while read -r s < /proc/$$/stat; set -- $s; [ $((${14} + ${15})) -lt 25 ]; do :; done; gate spun',
  },
  {
    name: 'cgroupns',
    read: [],
    script: 'gate limits || exit; cat /proc/self/cgroup',
  },
  {
    name: 'devices-denied',
    read: [],
    setup: KMSG_NODE,
    edit: withKmsg([{ allow: false, access: 'rwm' }]),
    script: OPEN_KMSG,
  },
  {
    name: 'devices-allowed',
    read: [],
    setup: KMSG_NODE,
    edit: withKmsg([{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 11, access: 'w' }]),
    script: OPEN_KMSG,
  },
  {
    // a cgroup mount shows the container its own cgroup, read-only
    name: 'cgroupmount',
    read: [],
    edit: (spec) => spec.mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'ro'] }),
    script: 'gate limits || exit; cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; ls /sys/fs/cgroup | grep -c "^cgroup.procs$"; ls -d /sys/fs/cgroup/*/ 2>/dev/null | wc -l; touch /sys/fs/cgroup/x 2>/dev/null || echo read-only',
  },
  {
    name: 'reservation',
    read: ['memory.low'],
    edit: (spec) => (spec.linux.resources.memory.reservation = 16 * MIB),
    script: 'gate limits',
  },
  {
    // v2 has no per-cgroup swappiness: refused, naming the field, before anything runs
    name: 'swappiness',
    read: [],
    edit: (spec) => (spec.linux.resources.memory.swappiness = 10),
    script: 'echo ran',
  },
];

function bundle(s: Scenario, index: number): Config {
  const image: ImageConfig = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin'], Entrypoint: ['/bin/sh', '-c', s.script] },
    rootfs: { type: 'layers', diff_ids: [] },
  };
  const spec = runtimeSpec({
    rootfs: '/skiff/rootfs', // inside the VM (infra/vm/vm.sh)
    image,
    fn: FN,
    settings: { ...DEFAULT_SETTINGS, ...s.settings },
    env: [],
    instanceId: s.name,
    hostId: 100_000_000 + 65536 * index,
    seccomp: defaultSeccompProfile(),
  }) as Config;
  s.edit?.(spec);
  return spec;
}

let base = '';
let consoleLog = '';
let vmInfo: Record<string, string> = {};
const results = new Map<string, Record<string, string>>();

/** What the container printed, without the gates' lines. */
const printed = (r: Record<string, string>) => r.stdout.split('\n').filter((l) => !l.startsWith('skiff-gate ')).join('\n');

/** The result line of one scenario, decoded; fails the test if the VM printed none. */
function result(name: string): Record<string, string> {
  const r = results.get(name);
  if (!r) throw new Error(`the VM printed no result for scenario ${name}; console:\n${consoleLog.slice(-4000)}`);
  return r;
}

/** Each scenario's linux.cgroupsPath, as runtimeSpec wrote it (/skiff/<fn>/<instance>). */
const cgroupsPath = new Map<string, string>();

describe.skipIf(!root)('cgroup v2 on a real kernel, in a VM (skipped when not root)', () => {
  beforeAll(async () => {
    if (!process.env.SKIFF_TEST_LAUNCHER) execFileSync('make', ['-s', '-C', launcherDir], { stdio: 'inherit' });
    base = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-vm-test-'));
    const dir = path.join(base, 'scenarios');
    SCENARIOS.forEach((s, i) => {
      const spec = bundle(s, i);
      cgroupsPath.set(s.name, spec.linux.cgroupsPath);
      fs.mkdirSync(path.join(dir, s.name), { recursive: true });
      fs.writeFileSync(path.join(dir, s.name, 'config.json'), JSON.stringify(spec, null, 2));
      fs.writeFileSync(path.join(dir, s.name, 'scenario.env'), `CGROUP='${spec.linux.cgroupsPath}'\nREAD='${s.read.join(' ')}'\nSETUP='${s.setup ?? ''}'\n`);
    });
    fs.writeFileSync(path.join(dir, 'list'), SCENARIOS.map((s) => s.name).join('\n') + '\n');

    const consoleFile = path.join(base, 'console.log');
    const resultsFile = path.join(base, 'results.log');
    const started = Date.now();
    const vm = spawn('bash', [
      path.join(repo, 'infra/vm/vm.sh'), '--scenarios', dir, '--launcher', launcher, '--work', path.join(base, 'work'),
      '--console', consoleFile, '--results', resultsFile, '--timeout', String(VM_TIMEOUT_S),
    ], { stdio: ['ignore', 'inherit', 'inherit'], detached: true });
    // vm.sh stops qemu itself after VM_TIMEOUT_S; this is the bound should vm.sh hang.
    const kill = setTimeout(() => process.kill(-vm.pid!, 'SIGKILL'), (VM_TIMEOUT_S + 30) * 1000);
    const [code] = await once(vm, 'exit');
    clearTimeout(kill);
    consoleLog = fs.existsSync(consoleFile) ? fs.readFileSync(consoleFile, 'utf8') : '';
    const lines = fs.existsSync(resultsFile) ? fs.readFileSync(resultsFile, 'utf8').split(/\r?\n/) : [];
    if (!lines.some((l) => l.startsWith('skiff-vm-end'))) {
      throw new Error(`the VM did not run to the end (vm.sh exit ${code}); results:\n${lines.join('\n')}\nconsole:\n${consoleLog.slice(-4000)}`);
    }
    for (const line of lines) {
      const [tag, name, ...fields] = line.split(' ');
      if (tag === 'skiff-vm-begin') vmInfo = Object.fromEntries([name!, ...fields].map((f) => f.split('=', 2) as [string, string]));
      if (tag !== 'skiff-vm-result' || !name) continue;
      results.set(name, Object.fromEntries(fields.map((f) => {
        const eq = f.indexOf('=');
        return [f.slice(0, eq), Buffer.from(f.slice(eq + 1), 'base64').toString('utf8').trim()];
      })));
    }
    const times = lines.filter((l) => l.startsWith('skiff-vm-')).map((l) => l.match(/uptime=(\S+)/)?.[1]).filter(Boolean);
    console.error(`cgroup-v2-vm: ${results.size} scenarios, ${((Date.now() - started) / 1000).toFixed(1)} s in all (guest uptime ${times.join(' → ')} s)`);
  }, (VM_TIMEOUT_S + 60) * 1000);

  afterAll(() => {
    if (base && !process.env.SKIFF_KEEP_TEST_DATA) fs.rmSync(base, { recursive: true, force: true });
    else if (base) console.error(`cgroup-v2-vm: kept ${base}; again by hand: infra/vm/vm.sh --scenarios ${base}/scenarios --shell`);
  });

  it('runs every scenario on cgroup2, in the cgroup its config names', () => {
    expect.soft(vmInfo.cgroupfs, 'filesystem type at /sys/fs/cgroup in the VM').toBe('cgroup2');
    for (const s of SCENARIOS.filter((s) => s.name !== 'swappiness')) {
      expect.soft(result(s.name).hostcg, `${s.name}: /proc/<container init>/cgroup in the VM`).toBe(`0::${cgroupsPath.get(s.name)}`);
    }
  });

  it('OOM-kills a process past memory.max, reports it and exits 137', () => {
    const r = result('memory');
    expect.soft(r['at.limits.memory.max'], 'memory.max').toBe(String(32 * MIB));
    expect.soft(r['at.limits.memory.swap.max'], 'memory.swap.max (swap = limit: none on top)').toBe('0');
    expect.soft(r.stdout, 'stdout: the allocation did not finish').not.toMatch(/allocated/);
    expect.soft(r.stderr.split('\n'), 'the launcher\'s report').toContain(`skiff-launch: memory: out of memory (memory limit ${32 * MIB} bytes)`);
    expect.soft(r.code, 'launcher exit code').toBe('137');
  });

  it('stops a fork loop at pids.max and reports it', () => {
    const r = result('pids');
    expect.soft(r['at.limits.pids.max'], 'pids.max').toBe('8');
    expect.soft(r.stdout, 'stdout: not every fork succeeded').not.toMatch(/forked 32/);
    expect.soft(r.stderr.split('\n'), 'the launcher\'s report').toContain('skiff-launch: pids: process limit reached (pids limit 8)');
  });

  it('writes cpu.max from quota and period and cpu.weight from shares, and the kernel throttles', () => {
    const r = result('cpu');
    expect.soft(r['at.limits.cpu.max'], 'cpu.max').toBe('30000 60000');
    // runc's conversion: weight = 1 + (shares - 2) * 9999 / 262142, so 512 → 20 (the default is 100).
    expect.soft(r['at.limits.cpu.weight'], 'cpu.weight').toBe('20');
    const throttled = Number(/^nr_throttled (\d+)$/m.exec(r['at.spun.cpu.stat'] ?? '')?.[1]);
    expect.soft(throttled, 'cpu.stat nr_throttled after 250 ms of CPU').toBeGreaterThan(0);
    expect.soft(r.code, 'launcher exit code').toBe('0');
  });

  it('removes each container\'s cgroup once it has exited', () => {
    for (const s of SCENARIOS) expect.soft(result(s.name).after, `${s.name}: its cgroup after the launcher exited`).toBe('absent');
  });

  it('enforces the device rules with an eBPF program: a denied device fails to open, an allowed one opens', () => {
    const denied = result('devices-denied');
    expect.soft(printed(denied), 'denied: /dev/zero (a default device) still works, /dev/kmsg2 does not open').toBe('2');
    expect.soft(denied.stderr, 'denied: the open fails in the kernel').toMatch(/can't create \/dev\/kmsg2: Operation not permitted/);
    const allowed = result('devices-allowed');
    expect.soft(printed(allowed), 'allowed by a rule: it opens').toBe('opened\n2');
    expect.soft(allowed.code, 'launcher exit code').toBe('0');
  });

  it('mounts the container\'s own cgroup read-only at a cgroup mount', () => {
    const r = result('cgroupmount');
    expect.soft(printed(r).split('\n'), 'memory.max, pids.max, its own cgroup.procs, no child cgroup, read-only')
      .toEqual([String(DEFAULT_SETTINGS.memoryMb * MIB), String(DEFAULT_SETTINGS.maxProcesses), '1', '0', 'read-only']);
    expect.soft(r.code, 'launcher exit code').toBe('0');
  });

  it('sets memory.low from the reservation and refuses swappiness, which v2 has no file for', () => {
    expect.soft(result('reservation')['at.limits.memory.low'], 'memory.low').toBe(String(16 * MIB));
    const r = result('swappiness');
    expect.soft(r.code, 'launcher exit code').toBe('125');
    expect.soft(r.stderr, 'the refusal').toBe('skiff-launch: config.json: linux.resources.memory.swappiness: cgroup v2 has no per-cgroup swappiness');
    expect.soft(r.stdout, 'nothing ran').toBe('');
    expect.soft(r.after, 'no cgroup left').toBe('absent');
  });

  it('shows the container its own cgroup as the root of its cgroup namespace', () => {
    const r = result('cgroupns');
    expect.soft(r.stdout.split('\n'), '/proc/self/cgroup in the container').toContain('0::/');
    expect.soft(r.code, 'launcher exit code').toBe('0');
  });
});
