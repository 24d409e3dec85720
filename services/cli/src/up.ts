import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImageStore } from '@skiff/image';
import { appendingTo } from './append.js';
import { ensureBasesFor, findFunctions, packManifest } from './images.js';
import { deploySettings } from './manifest.js';
import { REPO_ROOT, serviceArgs } from './paths.js';

export interface UpOptions {
  dataDir: string;
  port: number;
  natsUrl: string | undefined;
  natsPort: number;
  adminToken: string | undefined;
}

interface Running {
  name: string;
  child: ChildProcess;
  log: string;
}

function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(100);
  }
  throw new Error(`${what} did not come up within ${timeoutMs / 1000}s`);
}

/**
 * Brings the whole platform up on this machine: nats-server (unless SKIFF_NATS_URL names one),
 * gateway, scheduler and worker as child processes, then builds and deploys the example functions.
 */
export async function up(opts: UpOptions): Promise<void> {
  const logs = join(opts.dataDir, 'logs');
  mkdirSync(logs, { recursive: true, mode: 0o700 });
  const running: Running[] = [];
  let stopping = false;

  const start = (name: string, command: string, args: string[], env: NodeJS.ProcessEnv) => {
    const log = join(logs, `${name}.log`);
    const out = appendingTo(log);
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    // Two sources, one file: neither may end it for the other.
    child.stdout!.pipe(out, { end: false });
    child.stderr!.pipe(out, { end: false });
    child.once('exit', (code, signal) => {
      if (stopping) return;
      console.error(`skiff: ${name} exited (${signal ?? `status ${code}`}); its log is ${log}`);
      void shutdown(1);
    });
    running.push({ name, child, log });
  };

  const shutdown = async (status: number) => {
    if (stopping) return;
    stopping = true;
    // Services first, nats-server last, so they can leave cleanly.
    for (const r of [...running].reverse()) r.child.kill('SIGTERM');
    await Promise.all(running.map((r) => (r.child.exitCode !== null ? null : new Promise((res) => r.child.once('exit', res)))));
    process.exit(status);
  };
  process.once('SIGINT', () => void shutdown(0));
  process.once('SIGTERM', () => void shutdown(0));

  let natsUrl = opts.natsUrl;
  if (!natsUrl) {
    if (await portOpen(opts.natsPort)) {
      throw new Error(`port ${opts.natsPort} is taken; set SKIFF_NATS_URL to use that NATS server, or SKIFF_NATS_PORT for another port`);
    }
    const storeDir = join(opts.dataDir, 'nats');
    start('nats-server', 'nats-server', ['-c', join(REPO_ROOT, 'infra/nats/nats.conf'), '-p', String(opts.natsPort), '-sd', storeDir], process.env);
    await waitFor('nats-server', () => portOpen(opts.natsPort));
    natsUrl = `nats://127.0.0.1:${opts.natsPort}`;
  }

  const env = { ...process.env, SKIFF_DATA_DIR: opts.dataDir, SKIFF_NATS_URL: natsUrl, SKIFF_PORT: String(opts.port) };
  // Each service writes and rotates its own log (SKIFF_LOG_FILE); the same file gets what it prints outside its logger.
  for (const service of ['scheduler', 'worker', 'gateway'] as const) {
    start(service, process.execPath, serviceArgs(service), { ...env, SKIFF_LOG_FILE: join(logs, `${service}.log`) });
  }

  const store = await ImageStore.open(join(opts.dataDir, 'store'));
  const functions = findFunctions(join(REPO_ROOT, 'functions'));
  await ensureBasesFor(store, functions);
  const packed = [];
  for (const fn of functions) packed.push({ fn, ...(await packManifest(store, fn)) });

  const base = `http://127.0.0.1:${opts.port}`;
  await waitFor('the gateway', async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.ok === true);
  const tokenFile = join(opts.dataDir, 'admin.token');
  const token = opts.adminToken ?? (existsSync(tokenFile) ? readFileSync(tokenFile, 'utf8').trim() : undefined);
  if (!token) throw new Error(`no admin token: ${tokenFile} is missing and SKIFF_ADMIN_TOKEN is not set`);

  for (const { fn, ref } of packed) {
    const res = await fetch(`${base}/v1/functions/${fn.name}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(deploySettings(fn, ref)),
    });
    if (!res.ok) throw new Error(`deploying ${fn.name} failed: ${res.status} ${await res.text()}`);
  }

  const tokenHint = opts.adminToken ? 'from SKIFF_ADMIN_TOKEN' : tokenFile;
  const tokenExpr = opts.adminToken ? '$SKIFF_ADMIN_TOKEN' : `$(cat ${tokenFile})`;
  console.log(`
Skiff is up.
  API        ${base}  (OpenAPI document: ${base}/openapi.json)
  token      ${tokenHint}
  functions  ${packed.map((p) => p.fn.name).join(', ') || '(none)'}
  logs       ${logs}

Try:
  curl -H "Authorization: Bearer ${tokenExpr}" --data-binary hello ${base}/v1/functions/echo/invoke

Ctrl-C stops everything.`);
}
