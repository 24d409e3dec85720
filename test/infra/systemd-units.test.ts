import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, have } from '@skiff/testkit';

const DIR = join(REPO, 'infra/systemd');
/** Where the README tells to put the built checkout; the units name files under it. */
const INSTALL = '/opt/skiff';
const units = readdirSync(DIR).filter((f) => f.endsWith('.service') || f.endsWith('.target'));
const services = units.filter((f) => f.endsWith('.service'));

/** `key=value` lines of a unit, comments left out. */
function settings(unit: string): Array<[string, string]> {
  return readFileSync(join(DIR, unit), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}
const values = (unit: string, key: string) => settings(unit).filter(([k]) => k === key).map(([, v]) => v);

function verify(files: string[]): { status: number | null; said: string } {
  const r = spawnSync('systemd-analyze', ['verify', ...files], { encoding: 'utf8', cwd: tmpdir(), timeout: 60_000 });
  return { status: r.status, said: `${r.stdout}${r.stderr}`.trim() };
}

describe('infra/systemd units', () => {
  it('has a unit for nats-server and its users, the gateway, the scheduler and the worker, and a target for them all', () => {
    expect(units.sort()).toEqual(['skiff-gateway.service', 'skiff-nats-config.service', 'skiff-nats.service', 'skiff-scheduler.service', 'skiff-worker.service', 'skiff.target']);
  });

  it.skipIf(!have('systemd-analyze'))('parse without a word from systemd-analyze verify (skipped: no systemd-analyze)', () => {
    expect(verify(units.map((u) => join(DIR, u)))).toEqual({ status: 0, said: '' });
    // verify does speak up about a unit that is wrong: a misspelt key.
    const bad = mkdtempSync(join(tmpdir(), 'skiff-units-'));
    try {
      writeFileSync(join(bad, 'skiff-bad.service'), readFileSync(join(DIR, 'skiff-worker.service'), 'utf8').replace('Restart=on-failure', 'Restrat=on-failure'));
      expect(verify([join(bad, 'skiff-bad.service')]).said).toMatch(/Unknown key 'Restrat'/);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });

  it('start what the checkout builds: each file an ExecStart names under the install dir exists here', () => {
    for (const unit of services) {
      const [exec] = values(unit, 'ExecStart');
      expect(exec, unit).toBeDefined();
      const files = exec!.split(' ').filter((a) => a.startsWith(`${INSTALL}/`));
      // nats-server is Debian's, its config skiff-nats-config's (test/infra/nats-config.test.ts).
      if (unit !== 'skiff-nats.service') expect(files.length, unit).toBeGreaterThan(0);
      for (const f of files) expect(existsSync(join(REPO, f.slice(INSTALL.length + 1))), `${unit}: ${f}`).toBe(true);
    }
  });

  it('restart a service that failed, with a backoff, and stop the gateway first and nats-server last', () => {
    for (const unit of services) {
      expect(values(unit, 'Restart'), unit).toEqual(['on-failure']);
      // Spaced restarts, and a bound on how many: a crash loop ends failed, not for ever.
      expect(Number(values(unit, 'RestartSec')[0]), unit).toBeGreaterThanOrEqual(5);
      expect(Number(values(unit, 'StartLimitIntervalSec')[0]), unit).toBeGreaterThan(0);
      expect(Number(values(unit, 'StartLimitBurst')[0]), unit).toBeGreaterThan(0);
      // systemd 252 (Debian 12) does not know these; verify would warn on them.
      expect(values(unit, 'RestartSteps'), unit).toEqual([]);
      expect(values(unit, 'RestartMaxDelaySec'), unit).toEqual([]);
    }
    // systemd stops in the reverse order of After=: gateway, scheduler, worker, nats-server.
    const after = (unit: string) => values(unit, 'After').join(' ').split(' ');
    expect(after('skiff-gateway.service')).toEqual(expect.arrayContaining(['skiff-scheduler.service', 'skiff-worker.service', 'skiff-nats.service']));
    expect(after('skiff-scheduler.service')).toEqual(expect.arrayContaining(['skiff-worker.service', 'skiff-nats.service']));
    expect(after('skiff-worker.service')).toEqual(expect.arrayContaining(['skiff-nats.service']));
    // The worker alone gets SIGTERM: its launchers must not pass it to the containers it drains.
    expect(values('skiff-worker.service', 'KillMode')).toEqual(['mixed']);
  });

  /** docs/security.md #43: only the worker is root, and each unit is sandboxed. */
  it('run the gateway, the scheduler and nats-server as users of their own, without privileges, sandboxed', () => {
    for (const unit of ['skiff-gateway.service', 'skiff-scheduler.service', 'skiff-nats.service']) {
      expect(values(unit, 'User'), unit).toEqual([]);
      const want: Record<string, string> = {
        DynamicUser: 'yes',
        NoNewPrivileges: 'yes',
        CapabilityBoundingSet: '',
        ProtectSystem: 'strict',
        ProtectHome: 'yes',
        PrivateTmp: 'yes',
        PrivateDevices: 'yes',
        ProtectKernelTunables: 'yes',
        ProtectKernelModules: 'yes',
        ProtectControlGroups: 'yes',
        RestrictNamespaces: 'yes',
        RestrictSUIDSGID: 'yes',
      };
      for (const [key, value] of Object.entries(want)) expect(values(unit, key), `${unit}: ${key}`).toEqual([value]);
      expect(values(unit, 'SystemCallFilter'), unit).toContain('@system-service');
    }
    // The scheduler keeps no files; the gateway owns the data dir.
    expect(values('skiff-scheduler.service', 'StateDirectory')).toEqual([]);
    expect(values('skiff-gateway.service', 'StateDirectory')).toEqual(['skiff']);
  });

  it('give the worker root, a data dir no other service can write, the store read-only, and what containers do not need taken away', () => {
    const unit = 'skiff-worker.service';
    expect(values(unit, 'User')).toEqual(['root']);
    expect(values(unit, 'StateDirectory')).toEqual(['skiff-worker']);
    expect(values(unit, 'Environment')).toEqual(expect.arrayContaining(['SKIFF_DATA_DIR=/var/lib/skiff-worker', 'SKIFF_STORE_DIR=/var/lib/skiff/store']));
    expect(values(unit, 'ReadOnlyPaths').join(' ')).toContain('/var/lib/skiff');
    for (const [key, value] of Object.entries({ NoNewPrivileges: 'yes', ProtectSystem: 'full', ProtectHome: 'yes', PrivateTmp: 'yes', ProtectKernelModules: 'yes' })) {
      expect(values(unit, key), key).toEqual([value]);
    }
    // What would break containers: cgroups written under /sys, their own host names and namespaces.
    for (const key of ['ProtectKernelTunables', 'ProtectControlGroups', 'ProtectHostname', 'RestrictNamespaces', 'PrivateDevices', 'DynamicUser']) expect(values(unit, key), key).toEqual([]);
  });

  it.skipIf(!have('systemd-analyze'))('rate the gateway, the scheduler and nats-server at most 2.0 in systemd-analyze security (skipped: no systemd-analyze)', () => {
    for (const unit of ['skiff-gateway.service', 'skiff-scheduler.service', 'skiff-nats.service']) {
      const r = spawnSync('systemd-analyze', ['security', '--offline=true', join(DIR, unit)], { encoding: 'utf8', cwd: tmpdir(), timeout: 60_000 });
      const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(r.stdout);
      expect(m, `${unit}: ${r.stdout}${r.stderr}`).not.toBeNull();
      expect(Number(m![1]), unit).toBeLessThanOrEqual(2.0);
    }
  });

  it('set only variables the README documents', () => {
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    for (const unit of services) {
      for (const v of values(unit, 'Environment')) {
        const name = v.slice(0, v.indexOf('='));
        expect(readme, `${unit}: ${name}`).toContain(`\`${name}\``);
      }
    }
  });
});
