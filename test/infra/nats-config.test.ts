import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { REPO, freePort, waitUntil } from '@skiff/testkit';

const CLI = join(REPO, 'services/cli/dist/main.js');
const UNITS = join(REPO, 'infra/systemd');

/** `VAR=value` lines of an env file. */
const envFile = (file: string) => Object.fromEntries(readFileSync(file, 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
const unitLines = (unit: string, key: string) => readFileSync(join(UNITS, unit), 'utf8').split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));

/**
 * docs/security.md #26 under systemd: `skiff nats-config` (skiff-nats-config.service) writes the
 * config nats-server runs and each service's credentials, so a real deployment's NATS asks
 * every client for a password, as `npm start`'s does.
 */
describe('skiff nats-config, as the systemd units run it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-nats-config-'));
  const store = mkdtempSync(join(tmpdir(), 'skiff-nats-config-store-'));
  let server: ChildProcess;
  let port: number;
  const nats = (options: { user?: string; pass?: string }) => connect({ servers: `127.0.0.1:${port}`, reconnect: false, timeout: 5000, ...options });

  beforeAll(async () => {
    const r = spawnSync(process.execPath, [CLI, 'nats-config', dir], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    port = await freePort();
    server = spawn('nats-server', ['-c', join(dir, 'nats-server.conf'), '-p', String(port), '-sd', store], { stdio: 'ignore' });
    await waitUntil(async () => {
      try {
        await (await nats(envToOptions('gateway'))).close();
        return true;
      } catch {
        return false;
      }
    }, `nats-server on ${port}`);
  });
  afterAll(() => {
    server?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    rmSync(store, { recursive: true, force: true });
  });
  const envToOptions = (role: string) => {
    const env = envFile(join(dir, `${role}.env`));
    return { user: env.SKIFF_NATS_USER, pass: env.SKIFF_NATS_PASSWORD };
  };

  it('writes the server config and one env file per service, readable by root alone', () => {
    const files = readdirSync(dir).sort();
    expect(files).toEqual(expect.arrayContaining(['credentials.json', 'gateway.env', 'nats-server.conf', 'scheduler.env', 'worker.env']));
    for (const f of files) expect((statSync(join(dir, f)).mode & 0o777).toString(8), f).toBe('600');
    expect(Object.keys(envFile(join(dir, 'gateway.env')))).toEqual(['SKIFF_NATS_USER', 'SKIFF_NATS_PASSWORD']);
  });

  it('makes a nats-server that refuses a client without a password and lets each service in with its own', async () => {
    await expect(nats({})).rejects.toThrow(/Authorization Violation/i);
    await expect(nats({ user: envToOptions('gateway').user, pass: 'guessed-password' })).rejects.toThrow(/Authorization Violation/i);
    for (const role of ['gateway', 'scheduler', 'worker']) await (await nats(envToOptions(role))).close();
  });

  it('keeps the passwords on a second run, so services started with the first keep working', () => {
    const before = readFileSync(join(dir, 'gateway.env'), 'utf8');
    expect(spawnSync(process.execPath, [CLI, 'nats-config', dir]).status).toBe(0);
    expect(readFileSync(join(dir, 'gateway.env'), 'utf8')).toBe(before);
  });

  it('is what the units use: nats-server runs the written config, each service reads its env file', () => {
    expect(unitLines('skiff-nats-config.service', 'ExecStart')).toEqual(['/usr/bin/node /opt/skiff/services/cli/dist/main.js nats-config /etc/skiff/nats']);
    expect(unitLines('skiff-nats.service', 'LoadCredential')).toEqual(['nats-server.conf:/etc/skiff/nats/nats-server.conf']);
    expect(unitLines('skiff-nats.service', 'ExecStart')[0]).toMatch(/^\/usr\/sbin\/nats-server -c %d\/nats-server\.conf /);
    expect(unitLines('skiff-nats.service', 'Requires')).toEqual(['skiff-nats-config.service']);
    for (const role of ['gateway', 'scheduler', 'worker']) {
      expect(unitLines(`skiff-${role}.service`, 'EnvironmentFile'), role).toContain(`-/etc/skiff/nats/${role}.env`);
    }
  });
});
