import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnSync } from 'node:child_process';
import { NATS_AUTH_VARS, logFileOptions, natsUserEnv } from '@skiff/service-kit';
import { ImageStore } from '@skiff/image';
import { ensureBasesFor, findFunctions, packManifest } from './images.js';
import { deploySettings } from './manifest.js';
import { stopStaleNatsServer, writeNatsPid } from './nats-pid.js';
import { natsServerArgs, prepareNatsServer, writeEventsCredentials, type NatsCredentials } from './nats-server.js';
import { REPO_ROOT, serviceArgs, type ServiceName } from './paths.js';
import { Supervisor } from './supervisor.js';

/**
 * The order services stop in (gateways take no new work first; nats-server goes last, so the
 * others drain through it) and how long each may take after SIGTERM before it is killed: a
 * worker finishes the invocations it took, within this bound.
 */
const STOPPING: Record<ServiceName | 'nats-server', { stopOrder: number; stopGraceMs: number }> = {
  gateway: { stopOrder: 0, stopGraceMs: 10_000 },
  scheduler: { stopOrder: 1, stopGraceMs: 10_000 },
  worker: { stopOrder: 2, stopGraceMs: 30_000 },
  'nats-server': { stopOrder: 3, stopGraceMs: 10_000 },
};

export interface UpOptions {
  dataDir: string;
  port: number;
  natsUrl: string | undefined;
  natsPort: number;
  adminToken: string | undefined;
}

/** Whether setpriv (util-linux) can set a parent-death signal here. */
const PDEATHSIG = spawnSync('setpriv', ['--pdeathsig', 'SIGTERM', '--', 'true'], { stdio: 'ignore' }).status === 0;

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
  const supervisor = new Supervisor({
    logs,
    onStartFailure: (_name, why) => {
      console.error(`skiff: ${why}`);
      void shutdown(1);
    },
  });
  let stopping: Promise<void> | undefined;
  const shutdown = (status: number): Promise<void> => (stopping ??= supervisor.stop().then(() => process.exit(status)));
  // npm and the terminal may both pass on one Ctrl-C: the stop is bounded, later signals wait for it.
  const onSignal = () => {
    if (!stopping) console.error('skiff: stopping the gateway, scheduler and worker, then nats-server');
    void shutdown(0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await bringUp(opts, logs, supervisor);
  } catch (err) {
    await supervisor.stop();
    throw err;
  }
}

async function bringUp(opts: UpOptions, logs: string, supervisor: Supervisor): Promise<void> {
  let natsUrl = opts.natsUrl;
  // With SKIFF_NATS_URL the services take their credentials from SKIFF_NATS_* (README).
  let credentials: NatsCredentials | undefined;
  let eventsFile: string | undefined;
  if (!natsUrl) {
    const natsDir = join(opts.dataDir, 'nats');
    // One an earlier skiff up left (killed where nats-server could not be tied to it), first.
    await stopStaleNatsServer(natsDir, (line) => console.error(line));
    if (await portOpen(opts.natsPort)) {
      throw new Error(`port ${opts.natsPort} is taken; set SKIFF_NATS_URL to use that NATS server, or SKIFF_NATS_PORT for another port`);
    }
    const nats = prepareNatsServer(natsDir);
    credentials = nats.credentials;
    eventsFile = writeEventsCredentials(natsDir, credentials);
    const args = natsServerArgs(nats.configFile, opts.natsPort, natsDir);
    // nats-server gets no IPC lifeline as the Node services do: the kernel sends it SIGTERM when
    // skiff up dies, however it dies (setpriv's parent-death signal, kept across its exec).
    const tied = PDEATHSIG ? { command: 'setpriv', args: ['--pdeathsig', 'SIGTERM', '--', 'nats-server', ...args] } : { command: 'nats-server', args };
    supervisor.start({
      name: 'nats-server',
      ...tied,
      env: process.env,
      node: false,
      // nats-server prints its log; skiff up rotates it as the services rotate theirs.
      rotatedLog: logFileOptions({ ...process.env, SKIFF_LOG_FILE: join(logs, 'nats-server.log') }),
      onStart: (pid) => writeNatsPid(natsDir, pid),
      ...STOPPING['nats-server'],
    });
    await waitFor('nats-server', () => portOpen(opts.natsPort));
    natsUrl = `nats://127.0.0.1:${opts.natsPort}`;
  }

  const env = { ...process.env, SKIFF_DATA_DIR: opts.dataDir, SKIFF_NATS_URL: natsUrl, SKIFF_PORT: String(opts.port) };
  // Each service gets its own user on the server started here, and no other NATS credentials;
  // it writes and rotates its own log (SKIFF_LOG_FILE), and the same file gets what it prints
  // outside its logger.
  const serviceEnv = (service: ServiceName): NodeJS.ProcessEnv => {
    const own: NodeJS.ProcessEnv = { ...env, SKIFF_LOG_FILE: join(logs, `${service}.log`) };
    if (!credentials) return own;
    Object.assign(own, natsUserEnv(credentials[service].user, credentials[service].password));
    delete own[NATS_AUTH_VARS.token];
    delete own[NATS_AUTH_VARS.creds];
    return own;
  };
  for (const service of ['scheduler', 'worker', 'gateway'] as const) {
    supervisor.start({ name: service, command: process.execPath, args: serviceArgs(service), env: serviceEnv(service), node: true, ...STOPPING[service] });
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

  // From here on a service that dies is restarted; before, it was a failed start.
  supervisor.supervise();
  const tokenHint = opts.adminToken ? 'from SKIFF_ADMIN_TOKEN' : tokenFile;
  const tokenExpr = opts.adminToken ? '$SKIFF_ADMIN_TOKEN' : `$(cat ${tokenFile})`;
  console.log(`
Skiff is up.
  API        ${base}  (OpenAPI document: ${base}/openapi.json)
  token      ${tokenHint}${eventsFile ? `\n  events     ${eventsFile}  (NATS credential that publishes on trigger subjects)` : ''}
  functions  ${packed.map((p) => p.fn.name).join(', ') || '(none)'}
  logs       ${logs}

Try:
  curl -H "Authorization: Bearer ${tokenExpr}" --data-binary hello ${base}/v1/functions/echo/invoke

A service that dies is restarted. Ctrl-C stops everything.`);
}
