// Side by side with runc: the same bundles (the worker's full profile) run under skiff-launch
// and runc, and what the container observes must be the same. crun is left to the benchmark
// (it needs the cgroup workaround in DEVELOPERS.md).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cgroupLimits, ownCgroupLines } from '@skiff/testkit';
import { Fixture, RUNC, launcher, nextHostId, type Config } from './fixture.js';

const fx = new Fixture();
const hasRunc = fs.existsSync(RUNC);
const probeSrc = path.join(path.dirname(fileURLToPath(import.meta.url)), '../security/fixtures/sysprobe.c');

beforeAll(() => {
  fx.setup();
  execFileSync('cc', ['-static', '-O1', '-o', path.join(fx.rootfs, 'bin/sysprobe'), probeSrc]);
});
afterAll(() => fx.teardown());

// Everything a function can see of its isolation, one fact per line.
const OBSERVE = [
  'echo "id: $(id)"',
  'grep -E "^(Cap|NoNewPrivs|Seccomp:)" /proc/self/status',
  'echo "hostname: $(hostname)"',
  'echo "uid_map: $(cat /proc/self/uid_map)"; echo "gid_map: $(cat /proc/self/gid_map)"',
  'echo "nofile: $(ulimit -n) $(ulimit -Hn)"',
  'echo "pid: $$"; echo "net: $(ls /sys/class/net)"',
  'for p in / /proc /dev /tmp /sys /proc/sys /proc/keys /sys/firmware /proc/timer_list; do awk -v p="$p" \'$5==p {split($6,o,","); t=$(NF-2); r=o[1]} END {if (t) print "mount " p ": " t " " r}\' /proc/self/mountinfo; done',
  'echo "keys: $(cat /proc/keys | wc -c) firmware: $(ls -A /sys/firmware | wc -l)"',
  '{ echo 1 > /proc/sys/kernel/ns_last_pid; } 2>/dev/null; echo "proc/sys write: $?"',
  'touch /rootfile 2>/dev/null; echo "root write: $?"; echo x > /tmp/x && echo "tmp write: ok"',
  'echo "tmp owner: $(stat -c %u:%g /tmp)"',
  // its own cgroup: the memory and pids lines on v1, the unified line on v2
  `echo cgroup: $(grep -E "${ownCgroupLines().pattern}" /proc/self/cgroup | sort)`,
].join('; ');

interface Seen {
  out: string;
  cgroup: ReturnType<typeof cgroupLimits>;
  newNamespaces: string[];
}

/** Runs cfg under runtime; while it is paused on stdin, reads its cgroup limits from the host. */
async function observe(runtime: string, cfg: Config): Promise<Seen> {
  const [dir, id] = fx.bundle(cfg);
  const root = runtime === launcher ? fx.stateRoot : fx.stateRoot + '-runc';
  const child = spawn(runtime, ['--root', root, 'run', '--bundle', dir, id], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  for (let i = 0; i < 400 && !out.includes('== ready'); i++) await new Promise((r) => setTimeout(r, 25));
  const pid = JSON.parse(execFileSync(runtime, ['--root', root, 'state', id], { encoding: 'utf8' })).pid;
  const newNamespaces = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'user', 'uts'].filter(
    (n) => fs.readlinkSync(`/proc/${pid}/ns/${n}`) !== fs.readlinkSync(`/proc/self/ns/${n}`),
  );
  const cgroup = cgroupLimits(cfg.linux.cgroupsPath);
  child.stdin.end('go\n');
  const code = await exited;
  expect(err, `${runtime} stderr`).toBe('');
  expect(code, `${runtime} exit`).toBe(0);
  return { out: out.replace('== ready\n', ''), cgroup, newNamespaces };
}

function profile(args: string[]): Config {
  const cfg = fx.config(args, { hostId: nextHostId() });
  cfg.linux.resources = { memory: { limit: 64 << 20, swap: 64 << 20 }, cpu: { quota: 50000, period: 100000 }, pids: { limit: 64 } };
  return cfg;
}

describe.skipIf(!hasRunc)('skiff-launch and runc side by side (skipped when /usr/sbin/runc is absent)', () => {
  it('the container observes the same isolation under both', async () => {
    const hostId = nextHostId();
    const make = () => {
      const cfg = profile(['sh', '-c', `${OBSERVE}; echo "== ready"; read x`]);
      cfg.linux.uidMappings[0].hostID = hostId;
      cfg.linux.gidMappings[0].hostID = hostId;
      cfg.process.rlimits = [{ type: 'RLIMIT_NOFILE', hard: 2048, soft: 512 }];
      return cfg;
    };
    const ours = await observe(launcher, make());
    const theirs = await observe(RUNC, make());
    expect(ours.out.split('\n')).toEqual(theirs.out.split('\n'));
    expect(ours.cgroup).toEqual(theirs.cgroup);
    // and the facts are the intended ones, not merely equal
    expect(ours.out).toContain('CapEff:\t0000000000000000');
    expect(ours.out).toContain('NoNewPrivs:\t1');
    expect(ours.out).toMatch(new RegExp(`uid_map: +0 +${hostId} +65536`));
    expect(ours.out).toContain('nofile: 512 2048');
    expect(ours.newNamespaces).toEqual(theirs.newNamespaces);
    expect(ours.newNamespaces).toEqual(['cgroup', 'ipc', 'mnt', 'net', 'pid', 'user', 'uts']);
    expect(ours.cgroup).toEqual({ memory: String(64 << 20), memorySwap: String(64 << 20), cpuQuota: '50000', cpuPeriod: '100000', pids: '64' });
    const own = ours.out.split('\n').find((l) => l.startsWith('cgroup: '))!.slice('cgroup: '.length).split(' ');
    expect(own).toHaveLength(ownCgroupLines().count);
    for (const l of own) expect(l).toMatch(/:\/$/); // at the root of its cgroup namespace
  });

  it('the seccomp profile refuses and allows the same syscalls under both', () => {
    const ours = fx.run(profile(['/bin/sysprobe']));
    const theirs = fx.run(profile(['/bin/sysprobe']), { runtime: RUNC });
    expect(ours.stderr).toBe('');
    expect(theirs.stderr).toBe('');
    expect(ours.stdout).toBe(theirs.stdout);
    expect(ours.stdout).toContain('unshare=1\n');
  });

  it('exit statuses match, including death by signal', () => {
    for (const script of ['exit 3', 'kill -9 $$']) {
      const ours = fx.run(profile(['sh', '-c', script]));
      const theirs = fx.run(profile(['sh', '-c', script]), { runtime: RUNC });
      expect(ours.status, script).toBe(theirs.status);
    }
  });

  // The bundles runc, crun and skiff-launch write with `spec`, unchanged but for a root, no
  // terminal and what to run: the same container view under both runtimes. Two differences are
  // expected and left out: runc leaves the tmpfs under a read-only cgroup mount writable,
  // skiff-launch makes it read-only as the mount asks; and a masked file is the container's
  // /dev/null under runc (tmpfs), the host's under skiff-launch (devtmpfs: never a node the
  // container's /dev could have faked), so below /proc both read as "tmpfs".
  const SPEC_VIEW = [
    'echo "id: $(id)"',
    'grep -E "^(Cap|NoNewPrivs|Seccomp:)" /proc/self/status',
    'echo "hostname: $(hostname)"; echo "nofile: $(ulimit -n) $(ulimit -Hn)"',
    'echo "net: $(ls /sys/class/net)"; echo "dev: $(ls /dev | tr "\\n" " ")"',
    'awk \'$5 != "/sys/fs/cgroup" {split($6,o,","); t=$(NF-2); if ($5 ~ /^\\/proc\\// && t == "devtmpfs") t="tmpfs"; print "mount " $5 ": " t " " o[1]}\' /proc/self/mountinfo | sort',
    'echo "cgroups: $(ls /sys/fs/cgroup | tr "\\n" " ")"',
    'echo "cgroup dirs: $(cut -d: -f2 /proc/self/cgroup | sort | tr "\\n" " ")"',
    'echo "keys: $(wc -c < /proc/keys)"; { echo 1 > /proc/sys/kernel/ns_last_pid; } 2>/dev/null; echo "proc/sys write: $?"',
    'touch /rootfile 2>/dev/null; echo "root write: $?"',
  ].join('; ');

  for (const tool of [RUNC, '/usr/bin/crun', launcher]) {
    it.skipIf(!fs.existsSync(tool))(`the bundle \`${path.basename(tool)} spec\` writes: the same view under both`, () => {
      const dir = fs.mkdtempSync(path.join(fx.base, `sbs-${path.basename(tool)}-`));
      expect(spawnSync(tool, ['spec'], { cwd: dir }).status).toBe(0);
      const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
      cfg.root.path = fx.rootfs;
      cfg.process.terminal = false;
      cfg.process.args = ['sh', '-c', SPEC_VIEW];
      fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
      const run = (runtime: string, root: string) => {
        const id = `sbs${process.pid}-${path.basename(tool)}-${path.basename(runtime)}`;
        fx.ids.push(id);
        return spawnSync(runtime, ['--root', root, 'run', '--bundle', dir, id], { encoding: 'utf8', timeout: 30_000 });
      };
      const ours = run(launcher, fx.stateRoot);
      const theirs = run(RUNC, fx.stateRoot + '-runc');
      expect(ours.status, ours.stderr).toBe(0);
      expect(theirs.status, theirs.stderr).toBe(0);
      expect(ours.stdout.split('\n')).toEqual(theirs.stdout.split('\n'));
      // and it is the view the spec asks for
      expect(ours.stdout).toContain(`hostname: ${cfg.hostname}\n`);
      expect(ours.stdout).toContain('NoNewPrivs:\t1\n');
      expect(ours.stdout).toMatch(/^mount \/: \S+ ro$/m);
      expect(ours.stdout).toContain('keys: 0\n');
      expect(ours.stdout).toContain('proc/sys write: 1\n');
    });
  }
});
