// Container start: busybox /bin/true from one bundle with the worker's full profile (seven
// namespaces, user namespace, no capabilities, no_new_privs, default seccomp profile, masked
// and read-only paths, cgroup limits) under skiff-launch, runc and crun, alternating, beside a
// bare `unshare --fork` of the same namespaces as the floor.
//
// crun refuses this machine's hybrid cgroup layout, so the whole measurement runs in a private
// mount namespace with /sys/fs/cgroup/unified unmounted, and crun gets
// --cgroup-manager=disabled (so crun alone creates no cgroup: it does less work than the rest).
// See DEVELOPERS.md, "Launcher".
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SETTINGS } from '@skiff/contracts';
import { defaultSeccompProfile, runtimeSpec } from '@skiff/worker';
import { alternate, report, summarize } from '../lib/stats.mjs';

const here = fileURLToPath(import.meta.url);
const REPO = path.resolve(path.dirname(here), '../../..');
const LAUNCHER = path.join(REPO, 'services/launcher/build/skiff-launch');

export const description = 'container start, busybox /bin/true, full isolation: skiff-launch vs runc vs crun vs bare unshare; and the bundle runc spec writes';

function exec(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}: ${err}`))));
  });
}

/** A busybox bundle whose config.json is exactly what the worker writes for a function. */
function makeBundle(base) {
  const rootfs = path.join(base, 'rootfs');
  for (const d of ['bin', 'proc', 'dev', 'tmp', 'sys']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
  fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  fs.symlinkSync('busybox', path.join(rootfs, 'bin/true'));
  const image = { architecture: 'amd64', os: 'linux', config: { Env: ['PATH=/bin'], Cmd: ['/bin/true'] }, rootfs: { type: 'layers', diff_ids: [] } };
  const config = runtimeSpec({
    rootfs,
    image,
    fn: 'bench',
    settings: { ...DEFAULT_SETTINGS, memoryMb: 128, maxProcesses: 128 },
    env: [],
    instanceId: 'true',
    hostId: 1_000_000 + 65536 * 900,
    seccomp: defaultSeccompProfile(),
  });
  fs.writeFileSync(path.join(base, 'config.json'), JSON.stringify(config));
  return rootfs;
}

/** `skiff-launch run --wait-fd 3 --status-fd 3`: `go()` sends the byte and resolves with the status line. */
function prestart(launcher, root, bundle, id) {
  const child = spawn(launcher, ['--root', root, 'run', '--wait-fd', '3', '--status-fd', '3', '--bundle', bundle, id], { stdio: ['ignore', 'ignore', 'inherit', 'pipe'] });
  const control = child.stdio[3];
  const status = new Promise((resolve, reject) => {
    let text = '';
    control.on('data', (d) => (text += d));
    control.on('close', () => (text === '0\n' ? resolve() : reject(new Error(`prestarted launcher answered ${JSON.stringify(text)}`))));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  // The go byte, then end of file: the init cloned ahead wakes on either. `exited` comes after
  // the launcher's cleanup, which must not race the next container over the same cgroup path.
  return { go: () => (control.end('g'), status), exited };
}

async function inner(runs) {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'skiff-bench-launcher-'));
  fs.chmodSync(base, 0o755);
  const rootfs = makeBundle(base);
  const state = { skiff: path.join(base, 'state-skiff'), runc: path.join(base, 'state-runc'), crun: path.join(base, 'state-crun') };
  let n = 0;
  const contenders = {
    'skiff-launch run': () => exec(LAUNCHER, ['--root', state.skiff, 'run', '--bundle', base, `s${++n}`]),
    'runc run': () => exec('runc', ['--root', state.runc, 'run', '--bundle', base, `r${++n}`]),
    'crun run (cgroups disabled)': () => exec('crun', ['--root', state.crun, '--cgroup-manager=disabled', 'run', '--bundle', base, `c${++n}`]),
    'unshare --fork (floor)': () => exec('unshare', ['--mount', '--pid', '--net', '--ipc', '--uts', '--cgroup', '--user', '--fork', path.join(rootfs, 'bin/busybox'), 'true']),
  };
  try {
    for (let i = 0; i < 5; i++) for (const f of Object.values(contenders)) await f(); // warm caches (seccomp BPF, page cache)
    const samples = await alternate(runs, contenders);
    const rows = Object.entries(samples).map(([name, s]) => summarize(name, s));
    report(`launcher: ${runs} alternating runs each, /bin/true, full isolation`, rows, 'crun run (cgroups disabled)');
    const floor = rows.find((r) => r.name.startsWith('unshare'));
    const skiff = rows.find((r) => r.name.startsWith('skiff'));
    const runc = rows.find((r) => r.name.startsWith('runc'));
    console.log(`  skiff-launch p50 = ${(skiff.p50 / floor.p50).toFixed(2)} × unshare floor, ${(skiff.p50 / runc.p50).toFixed(2)} × runc (targets: ≤ 0.5 × crun, ≤ 1.5 × floor)`);

    // What the worker waits for on an exec invocation: a launcher started ahead, from the go
    // byte to the exit status, beside a launcher started then.
    const started = [];
    const ahead = [];
    for (let i = 0; i < runs; i++) {
      let t0 = performance.now();
      await exec(LAUNCHER, ['--root', state.skiff, 'run', '--bundle', base, `s${++n}`]);
      started.push(performance.now() - t0);
      const waiting = prestart(LAUNCHER, state.skiff, base, `w${++n}`);
      await new Promise((r) => setTimeout(r, 50)); // it clones its init and settles, untimed
      t0 = performance.now();
      await waiting.go();
      ahead.push(performance.now() - t0);
      await waiting.exited;
    }
    report(`launcher started ahead (--wait-fd, as the worker runs it): ${runs} alternating runs, /bin/true`, [summarize('skiff-launch run (start → exit)', started), summarize('started ahead (go byte → status)', ahead)], 'skiff-launch run (start → exit)');

    await runcSpecRow(base, runs, state);
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
}

/**
 * The bundle `runc spec` writes, as a user would try it: a busybox root, `terminal: false` (there
 * is no terminal here) and nothing else changed (its `sh` reads end of file on stdin and exits).
 * It has no user namespace, runc's default capabilities (ambient ones included) and a read-only
 * cgroup mount. A runtime that refuses the bundle is reported with its own message, not timed.
 */
async function runcSpecRow(base, runs, state) {
  const bundle = path.join(base, 'runc-spec');
  fs.mkdirSync(path.join(bundle, 'rootfs', 'bin'), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(bundle, 'rootfs/bin/busybox'));
  fs.chmodSync(path.join(bundle, 'rootfs/bin/busybox'), 0o755);
  fs.symlinkSync('busybox', path.join(bundle, 'rootfs/bin/sh'));
  await exec('runc', ['spec', '--bundle', bundle]);
  const configPath = path.join(bundle, 'config.json');
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  config.process.terminal = false;
  fs.writeFileSync(configPath, JSON.stringify(config, null, 2));
  let n = 0;
  const all = {
    'skiff-launch run': () => exec(LAUNCHER, ['--root', state.skiff, 'run', '--bundle', bundle, `rs${++n}`]),
    'runc run': () => exec('runc', ['--root', state.runc, 'run', '--bundle', bundle, `rr${++n}`]),
    'crun run (cgroups disabled)': () => exec('crun', ['--root', state.crun, '--cgroup-manager=disabled', 'run', '--bundle', bundle, `rc${++n}`]),
  };
  const contenders = {};
  const refused = [];
  for (const [name, once] of Object.entries(all)) {
    try {
      for (let i = 0; i < 3; i++) await once();
      contenders[name] = once;
    } catch (err) {
      const said = /: (exit \d+): ([^]*)$/.exec(String(err.message));
      refused.push(`  ${name.padEnd(34)} refuses the bundle (${said ? `${said[1]}): ${said[2].trim()}` : `): ${err.message}`}`);
    }
  }
  const rows = Object.entries(await alternate(runs, contenders)).map(([name, s]) => summarize(name, s));
  report(`runc spec bundle (busybox root, terminal: false): ${runs} alternating runs each, sh reading end of file`, rows, rows.some((r) => r.name.startsWith('crun')) ? 'crun run (cgroups disabled)' : undefined);
  for (const line of refused) console.log(line);
}

export async function run({ runs }) {
  runs = Math.max(50, runs);
  if (!fs.existsSync(LAUNCHER)) throw new Error(`${LAUNCHER} is missing: make -C services/launcher`);
  // crun's workaround: a private mount namespace without the empty cgroup v2 hierarchy.
  await new Promise((resolve, reject) => {
    const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
      'mountpoint -q /sys/fs/cgroup/unified && umount /sys/fs/cgroup/unified; exec "$0" "$1" --inner "$2"', process.execPath, here, String(runs)],
    { stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`launcher bench exited ${code}`))));
  });
}

if (process.argv[2] === '--inner') await inner(Number(process.argv[3]));
