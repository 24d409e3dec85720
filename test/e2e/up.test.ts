import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { REPO, freePort, waitUntil } from '@skiff/testkit';

/** What a TCP server on the port says first, or the code of the error connecting (ECONNREFUSED: nothing listens). */
function greeting(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('data', (d) => (s.destroy(), resolve(d.toString())));
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** `npm start` is bootstrap + `skiff up`; this runs `skiff up` the same way on free ports. */
describe('skiff up', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-up-'));
  let child: ChildProcess | undefined;
  let output = '';

  afterAll(() => {
    child?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('brings the platform up, deploys echo, answers the printed curl, and stops everything on Ctrl-C', async () => {
    const port = await freePort();
    const natsPort = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, SKIFF_DATA_DIR: dataDir, SKIFF_PORT: String(port), SKIFF_NATS_PORT: String(natsPort) };
    delete env.SKIFF_NATS_URL;
    delete env.SKIFF_ADMIN_TOKEN;
    child = spawn(process.execPath, [join(REPO, 'services/cli/dist/main.js'), 'up'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (c) => (output += c));
    child.stderr!.on('data', (c) => (output += c));
    await waitUntil(async () => output.includes('Skiff is up'), 'skiff up', 60_000).catch((err) => {
      throw new Error(`${err.message}\n${output}`);
    });

    const tokenFile = join(dataDir, 'admin.token');
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(output).toContain(`curl -H "Authorization: Bearer $(cat ${tokenFile})" --data-binary hello http://127.0.0.1:${port}/v1/functions/echo/invoke`);
    const token = readFileSync(tokenFile, 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${port}/v1/functions/echo/invoke`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: 'hello' });
    expect(await res.text()).toBe('hello');
    // The stream-mode Node.js example, with its JSON in and out.
    const hello = await fetch(`http://127.0.0.1:${port}/v1/functions/hello/invoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Ada' }),
    });
    expect(hello.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await hello.json()).toEqual({ greeting: 'Hello, Ada!' });
    // the nats-server it started speaks NATS on its port, and only to the services (docs/security.md #26)
    const info = await greeting(natsPort);
    expect(info).toMatch(/^INFO \{/);
    expect(info).toContain('"auth_required":true');
    await expect(connect({ servers: `nats://127.0.0.1:${natsPort}`, reconnect: false })).rejects.toThrow(/Authorization Violation/i);
    for (const f of ['credentials.json', 'nats-server.conf']) expect(statSync(join(dataDir, 'nats', f)).mode & 0o777, f).toBe(0o600);
    // The events credential: its file's path in the banner, never its password (docs/security.md #44).
    const eventsFile = join(dataDir, 'nats', 'events.env');
    expect(output).toContain(`events     ${eventsFile}`);
    expect(statSync(eventsFile).mode & 0o777).toBe(0o600);
    const ev = Object.fromEntries(readFileSync(eventsFile, 'utf8').split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(output).not.toContain(ev.SKIFF_NATS_PASSWORD);
    const publisher = await connect({ servers: `nats://127.0.0.1:${natsPort}`, reconnect: false, user: ev.SKIFF_NATS_USER, pass: ev.SKIFF_NATS_PASSWORD, inboxPrefix: ev.SKIFF_NATS_INBOX_PREFIX });
    publisher.publish('orders.new', 'an event');
    await publisher.flush();
    await publisher.close();

    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    // Every service is gone: nothing answers on the gateway's or NATS's port any more.
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toMatchObject({ cause: { code: 'ECONNREFUSED' } });
    expect(await greeting(natsPort)).toBe('ECONNREFUSED');
  });
});
