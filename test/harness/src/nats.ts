import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { INBOX_PREFIXES, JETSTREAM, type NatsRole } from '@skiff/contracts';
import { connectNats, natsUserEnv } from '@skiff/service-kit';
import { natsServerArgs, prepareNatsServer, type ExtraNatsUser, type NatsCredentials, type NatsUser } from '@skiff/cli';
import type { NatsConnection } from '@nats-io/transport-node';
import { freePort } from './ports.js';

/**
 * The benchmark's raw peers (test/bench): a user of the test server only, allowed `bench.>`,
 * inboxes of its own prefix (BENCH_INBOX_PREFIX) and JetStream for its own stream
 * (BENCH_STREAM), never anything of Skiff's.
 */
export const BENCH_INBOX_PREFIX = '_INBOX_bench';
export const BENCH_STREAM = 'BENCH';
const BENCH_USER: ExtraNatsUser = {
  user: 'bench',
  password: randomBytes(24).toString('base64url'),
  permissions: {
    publish: ['bench.>', '$JS.API.INFO', `$JS.API.*.*.${BENCH_STREAM}`, `$JS.API.*.*.${BENCH_STREAM}.>`, `$JS.API.*.*.*.${BENCH_STREAM}.>`, `$JS.ACK.${BENCH_STREAM}.>`, `$JS.API.STREAM.INFO.${JETSTREAM.asyncStream}`],
    subscribe: ['bench.>', `${BENCH_INBOX_PREFIX}.>`],
    allowResponses: true,
  },
};

export interface NatsServer {
  url: string;
  port: number;
  /** The directory with the generated config, the services' credentials and the JetStream store. */
  dir: string;
  /** Each service's user on this server (as `skiff up` generates them). */
  credentials: NatsCredentials;
  /** The benchmark peer's user (bench.> only). */
  bench: NatsUser;
  /** The environment that gives a service the role's credentials. */
  env(role: NatsRole): Record<string, string>;
  /** A connection with the role's credentials, as that service would have. */
  connect(role: NatsRole): Promise<NatsConnection>;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its store. */
  stop(): Promise<void>;
  /** Stops the server and starts it again on the same port and store. */
  restart(): Promise<void>;
  /** Kills the server with SIGKILL (no chance to flush), then starts it again on the same port and store. */
  crash(): Promise<void>;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function waitUntil(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`${what} not ready after ${ms} ms`);
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => (clearTimeout(t), resolve()));
    child.kill('SIGTERM');
  });
}

/**
 * A real nats-server with JetStream on a free port, for one test suite, configured as
 * `skiff up` configures its own: credentials per service and their subject permissions.
 * `dir` (default: a new temporary directory, removed on stop) keeps credentials across starts.
 */
export async function startNats(opts: { dir?: string } = {}): Promise<NatsServer> {
  const port = await freePort();
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'skiff-nats-'));
  const { configFile, credentials } = prepareNatsServer(dir, [BENCH_USER]);
  const url = `nats://127.0.0.1:${port}`;
  let child: ChildProcess;
  const launch = async () => {
    child = spawn('nats-server', natsServerArgs(configFile, port, dir), { stdio: 'ignore' });
    await waitUntil(() => canConnect(port), `nats-server on ${port}`);
  };
  await launch();
  const env = (role: NatsRole) => natsUserEnv(credentials[role].user, credentials[role].password);
  return {
    url,
    port,
    dir,
    credentials,
    bench: { user: BENCH_USER.user, password: BENCH_USER.password },
    env,
    // The events credential reads only replies on its own inbox prefix.
    connect: (role) =>
      connectNats({ url, name: `skiff-test-as-${role}`, auth: { kind: 'user', user: credentials[role].user, password: credentials[role].password }, ...(role === 'events' ? { inboxPrefix: INBOX_PREFIXES.events } : {}) }),
    async stop() {
      await stopProcess(child);
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await stopProcess(child);
      await launch();
    },
    async crash() {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await gone;
      await launch();
    },
  };
}

export { stopProcess, waitUntil };
