import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, freePort, processAlive as alive, unmountUnder, waitUntil } from '@skiff/testkit';

/** What a TCP server on the port says first, or the code of the error connecting. */
function greeting(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('data', (d) => (s.destroy(), resolve(d.toString())));
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** The children of `parent` by what they run: nats-server, or the service whose dist/main.js they start. */
function children(parent: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== parent) continue;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const name = /services\/(\w+)\/dist\/main\.js/.exec(cmd)?.[1] ?? (cmd.includes('nats-server') ? 'nats-server' : undefined);
      if (name) out[name] = Number(pid);
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Mount points in this host's mount table at or below `dir`. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
}

/**
 * `npm start` runs `skiff up` in the terminal's process group; this starts it as the leader of
 * a group of its own, so a signal to the group is what Ctrl-C sends.
 */
describe('skiff up supervises what it starts', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-super-'));
  let child: ChildProcess;
  let output = '';
  let port = 0;
  let natsPort = 0;
  let token = '';
  let exited: Promise<number | null>;

  const echo = () =>
    fetch(`http://127.0.0.1:${port}/v1/functions/echo/invoke`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'after' }).then(
      async (r) => (r.status === 200 ? await r.text() : `status ${r.status}`),
      (err: Error) => err.message,
    );

  beforeAll(async () => {
    port = await freePort();
    natsPort = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, SKIFF_DATA_DIR: dataDir, SKIFF_PORT: String(port), SKIFF_NATS_PORT: String(natsPort), SKIFF_HEARTBEAT_MS: '200' };
    delete env.SKIFF_NATS_URL;
    delete env.SKIFF_ADMIN_TOKEN;
    child = spawn(process.execPath, [join(REPO, 'services/cli/dist/main.js'), 'up'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child.stdout!.on('data', (c) => (output += c));
    child.stderr!.on('data', (c) => (output += c));
    exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    await waitUntil(async () => output.includes('Skiff is up'), 'skiff up', 90_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${output}`);
    });
    token = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
  });

  afterAll(() => {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    for (const pid of Object.values(children(child.pid!))) process.kill(-pid, 'SIGKILL');
    unmountUnder(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('restarts a worker killed with SIGKILL, and the gateway, scheduler and nats-server keep running', async () => {
    expect(await echo()).toBe('after');
    const before = children(child.pid!);
    expect(Object.keys(before).sort()).toEqual(['gateway', 'nats-server', 'scheduler', 'worker']);

    process.kill(before.worker!, 'SIGKILL');
    await waitUntil(async () => /skiff: worker exited \(SIGKILL\).*restarting it in 0\.5s/.test(output), 'the restart to be logged', 10_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${output}`);
    });
    await waitUntil(async () => (children(child.pid!).worker ?? before.worker) !== before.worker, 'a new worker', 20_000);

    // The others are the same processes as before, and answer.
    const after = children(child.pid!);
    expect(after.gateway).toBe(before.gateway);
    expect(after.scheduler).toBe(before.scheduler);
    expect(after['nats-server']).toBe(before['nats-server']);
    expect(child.exitCode).toBe(null);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect(await greeting(natsPort)).toMatch(/^INFO \{/);
    // A call succeeds once the new worker has joined (until then: 503, no worker).
    let last = '';
    await waitUntil(async () => (last = await echo()) === 'after', 'a call served by the new worker', 30_000).catch((err: Error) => {
      throw new Error(`${err.message}; last answer: ${last}`);
    });
    const nodes = (await (await fetch(`http://127.0.0.1:${port}/v1/nodes`, { headers: { authorization: `Bearer ${token}` } })).json()) as { nodes: unknown[] };
    expect(nodes.nodes.length).toBe(1);
  });

  it('stops everything on Ctrl-C (SIGINT to the process group): no crash in any log, no mount left', async () => {
    const services = children(child.pid!);
    expect(Object.keys(services).sort()).toEqual(['gateway', 'nats-server', 'scheduler', 'worker']);
    // The worker has mounted the image it ran.
    expect(await echo()).toBe('after');
    expect(mountsUnder(dataDir).length).toBeGreaterThan(0);

    // Only what the logs say from here on counts (the kill above made the others log errors).
    const logDir = join(dataDir, 'logs');
    const offsets = new Map(readdirSync(logDir).map((f) => [f, readFileSync(join(logDir, f)).length]));
    const outputBefore = output.length;
    process.kill(-child.pid!, 'SIGINT');
    expect(await exited).toBe(0);
    for (const [name, pid] of Object.entries(services)) expect(alive(pid), `${name} (pid ${pid}) still runs`).toBe(false);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toMatchObject({ cause: { code: 'ECONNREFUSED' } });
    expect(await greeting(natsPort)).toBe('ECONNREFUSED');

    // Each service stopped once, cleanly: no second stop, no stack trace, nothing unhandled.
    const logs = readdirSync(logDir).map((f) => `${f}:\n${readFileSync(join(logDir, f)).subarray(offsets.get(f) ?? 0).toString()}`);
    const everything = [output.slice(outputBefore), ...logs].join('\n');
    // A stack trace printed (a new line, then "    at ") or logged by pino (an escaped one).
    for (const bad of [/already closed/i, /unhandled/i, /not mounted/i, /(\n|\\n)\s+at /, /stopping failed/, /did not stop within/, /"level":50/]) {
      expect(everything, `${bad} in the output or a log`).not.toMatch(bad);
    }
    // The worker unmounted its images on the way out.
    expect(mountsUnder(dataDir)).toEqual([]);
  });
});

/** A process's start time (/proc/<pid>/stat field 22): with its pid, it names one process. */
function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

/**
 * docs/security.md #28 and #42: `skiff up` killed with SIGKILL leaves nothing running, nats-server
 * included; one an earlier run left anyway is stopped by the next start; nats-server.log rotates.
 */
describe('skiff up killed with SIGKILL', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-killed-'));
  const started: ChildProcess[] = [];
  let port = 0;
  let natsPort = 0;
  let env: NodeJS.ProcessEnv;

  /** Starts `skiff up` in a process group of its own; resolves once it says it is up. */
  const up = async () => {
    const child = spawn(process.execPath, [join(REPO, 'services/cli/dist/main.js'), 'up'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    started.push(child);
    const run = { child, output: '' };
    child.stdout!.on('data', (c) => (run.output += c));
    child.stderr!.on('data', (c) => (run.output += c));
    await waitUntil(async () => run.output.includes('Skiff is up') || child.exitCode !== null, 'skiff up', 90_000);
    if (!run.output.includes('Skiff is up')) throw new Error(`skiff up did not come up:\n${run.output}`);
    return run;
  };

  beforeAll(async () => {
    port = await freePort();
    natsPort = await freePort();
    // Small logs, so nats-server's start alone rotates its log.
    env = { ...process.env, SKIFF_DATA_DIR: dataDir, SKIFF_PORT: String(port), SKIFF_NATS_PORT: String(natsPort), SKIFF_HEARTBEAT_MS: '200', SKIFF_LOG_MAX_BYTES: '1024', SKIFF_LOG_KEEP: '2' };
    delete env.SKIFF_NATS_URL;
    delete env.SKIFF_ADMIN_TOKEN;
  });

  afterAll(() => {
    for (const c of started) {
      const pids = Object.values(children(c.pid!));
      if (c.exitCode === null && c.signalCode === null) process.kill(-c.pid!, 'SIGKILL');
      for (const pid of pids) process.kill(-pid, 'SIGKILL');
    }
    unmountUnder(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('rotates nats-server.log by size as the services rotate theirs: SKIFF_LOG_KEEP files of whole lines', async () => {
    const { child } = await up();
    const logs = join(dataDir, 'logs');
    const files = () => readdirSync(logs).filter((f) => f.startsWith('nats-server.log'));
    await waitUntil(async () => files().includes('nats-server.log.1'), 'nats-server.log to rotate', 20_000).catch((err: Error) => {
      throw new Error(`${err.message}: ${files().join(', ')}`);
    });
    expect(files().sort()).toEqual(expect.arrayContaining(['nats-server.log', 'nats-server.log.1']));
    expect(files().filter((f) => !['nats-server.log', 'nats-server.log.1', 'nats-server.log.2'].includes(f))).toEqual([]);
    for (const f of files().filter((f) => f !== 'nats-server.log')) {
      const text = readFileSync(join(logs, f), 'utf8');
      expect(statSync(join(logs, f)).size, f).toBeLessThanOrEqual(1024);
      expect(text.endsWith('\n'), `${f} ends with a whole line`).toBe(true);
      expect(text).toMatch(/\[\d+\] \d{4}\/\d\d\/\d\d /); // nats-server's own lines
    }
    expect(child.exitCode).toBe(null);
  });

  it('takes nats-server down with it, as the Node services', async () => {
    const [first] = started;
    const services = children(first!.pid!);
    expect(Object.keys(services).sort()).toEqual(['gateway', 'nats-server', 'scheduler', 'worker']);
    process.kill(first!.pid!, 'SIGKILL');
    await waitUntil(async () => Object.values(services).every((pid) => !alive(pid)), 'every service and nats-server to stop', 30_000).catch((err: Error) => {
      const left = Object.entries(services).filter(([, pid]) => alive(pid)).map(([name, pid]) => `${name} (pid ${pid})`);
      throw new Error(`${err.message}; still running: ${left.join(', ')}`);
    });
    expect(await greeting(natsPort)).toBe('ECONNREFUSED');
  });

  it('stops, on its next start, a nats-server an earlier skiff up of the data dir left running', async () => {
    // What a skiff up killed where nats-server could not be tied to it leaves: its nats-server,
    // not in its process group, running on with the data dir's config and port.
    const natsDir = join(dataDir, 'nats');
    const record = JSON.parse(readFileSync(join(natsDir, 'nats-server.pid'), 'utf8')) as { skiffUp: { pid: number } };
    const left = spawn('nats-server', ['-c', join(natsDir, 'nats-server.conf'), '-p', String(natsPort), '-sd', natsDir], { stdio: 'ignore', detached: true });
    started.push(left);
    await waitUntil(async () => (await greeting(natsPort)).startsWith('INFO'), 'the left nats-server to listen');
    writeFileSync(join(natsDir, 'nats-server.pid'), JSON.stringify({ ...record, natsServer: { pid: left.pid, starttime: startTime(left.pid!) } }));

    const next = await up();
    expect(next.output).toContain(`stopping nats-server pid ${left.pid}, left running by an earlier skiff up of this data dir`);
    expect(alive(left.pid!)).toBe(false);
    const now = children(next.child.pid!);
    expect(now['nats-server']).toBeDefined();
    expect(await greeting(natsPort)).toMatch(/^INFO \{/);
    // And it stops in turn when this skiff up is killed.
    process.kill(next.child.pid!, 'SIGKILL');
    await waitUntil(async () => !alive(now['nats-server']!), 'the new nats-server to stop with its skiff up', 30_000);
    expect(existsSync(join(natsDir, 'nats-server.pid'))).toBe(true);
  });
});
