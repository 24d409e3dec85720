import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NATS_PID_FILE, startTimeOf, stopStaleNatsServer } from './nats-pid.js';

const dirs: string[] = [];
const procs: ChildProcess[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) p.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function record(natsServer: { pid: number; starttime: string }, skiffUp: { pid: number; starttime: string }): string {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-natspid-'));
  dirs.push(dir);
  writeFileSync(join(dir, NATS_PID_FILE), JSON.stringify({ natsServer, skiffUp }));
  return dir;
}

function sleeper(): ChildProcess {
  const p = spawn('sleep', ['600'], { stdio: 'ignore' });
  procs.push(p);
  return p;
}

const gone = { pid: 2 ** 22 + 1, starttime: '1' };
const said: string[] = [];

/** docs/security.md #42: what `skiff up` stops of an earlier run, and what it leaves alone. */
describe('stopStaleNatsServer', () => {
  it('leaves a live process that is not a nats-server alone (its pid was given to another program)', async () => {
    const other = sleeper();
    await new Promise((r) => other.once('spawn', r));
    const dir = record({ pid: other.pid!, starttime: startTimeOf(other.pid!)! }, gone);
    expect(await stopStaleNatsServer(dir, (l) => said.push(l))).toBeUndefined();
    expect(other.exitCode === null && other.signalCode === null).toBe(true);
    expect(existsSync(join(dir, NATS_PID_FILE))).toBe(false);
  });

  it('leaves a process whose start time is not the one recorded alone', async () => {
    const other = sleeper();
    await new Promise((r) => other.once('spawn', r));
    const dir = record({ pid: other.pid!, starttime: '12345' }, gone);
    expect(await stopStaleNatsServer(dir, (l) => said.push(l))).toBeUndefined();
    expect(other.signalCode).toBe(null);
  });

  it('refuses to start while the skiff up that wrote the file still runs', async () => {
    const up = sleeper();
    await new Promise((r) => up.once('spawn', r));
    const dir = record(gone, { pid: up.pid!, starttime: startTimeOf(up.pid!)! });
    await expect(stopStaleNatsServer(dir, (l) => said.push(l))).rejects.toThrow(`another skiff up (pid ${up.pid}) runs on this data dir`);
  });

  it('stops a nats-server that outlived its skiff up', async () => {
    const nats = spawn('nats-server', ['-a', '127.0.0.1', '-p', '-1'], { stdio: 'ignore' });
    procs.push(nats);
    await new Promise((r) => nats.once('spawn', r));
    const exited = new Promise((r) => nats.once('exit', (_c, signal) => r(signal)));
    const dir = record({ pid: nats.pid!, starttime: startTimeOf(nats.pid!)! }, gone);
    expect(await stopStaleNatsServer(dir, (l) => said.push(l))).toBe(nats.pid);
    expect(await exited).toBe('SIGTERM');
  });
});
