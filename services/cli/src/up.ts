import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NATS_AUTH_VARS, natsUserEnv } from '@skiff/contracts';
import { ImageStore } from '@skiff/image';
import { ensureBasesFor, findFunctions, packManifest } from './images.js';
import { deploySettings } from './manifest.js';
import { natsServerArgs, prepareNatsServer, type NatsCredentials } from './nats-server.js';
import { REPO_ROOT, serviceArgs, type ServiceName } from './paths.js';

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
    const out = createWriteStream(log, { flags: 'a' });
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
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
  // With SKIFF_NATS_URL the services take their credentials from SKIFF_NATS_* (README).
  let credentials: NatsCredentials | undefined;
  if (!natsUrl) {
    if (await portOpen(opts.natsPort)) {
      throw new Error(`port ${opts.natsPort} is taken; set SKIFF_NATS_URL to use that NATS server, or SKIFF_NATS_PORT for another port`);
    }
    const natsDir = join(opts.dataDir, 'nats');
    const nats = prepareNatsServer(natsDir);
    credentials = nats.credentials;
    start('nats-server', 'nats-server', natsServerArgs(nats.configFile, opts.natsPort, natsDir), process.env);
    await waitFor('nats-server', () => portOpen(opts.natsPort));
    natsUrl = `nats://127.0.0.1:${opts.natsPort}`;
  }

  const env = { ...process.env, SKIFF_DATA_DIR: opts.dataDir, SKIFF_NATS_URL: natsUrl, SKIFF_PORT: String(opts.port) };
  // Each service gets its own user on the server started here, and no other NATS credentials.
  const serviceEnv = (service: ServiceName): NodeJS.ProcessEnv => {
    if (!credentials) return env;
    const own: NodeJS.ProcessEnv = { ...env, ...natsUserEnv(credentials[service].user, credentials[service].password) };
    delete own[NATS_AUTH_VARS.token];
    delete own[NATS_AUTH_VARS.creds];
    return own;
  };
  for (const service of ['scheduler', 'worker', 'gateway'] as const) start(service, process.execPath, serviceArgs(service), serviceEnv(service));

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
