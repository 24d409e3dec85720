import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serviceArgs } from '@skiff/cli';
import { ImageStore, buildBusyboxBase, buildNodeRuntime, packFunction } from '@skiff/image';
import { startNats, stopProcess, waitUntil, type NatsServer } from './nats.js';
import { freePort } from './ports.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));

export type ServiceName = 'gateway' | 'scheduler' | 'worker';

export interface Service {
  name: string;
  child: ChildProcess;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/**
 * A whole Skiff on this machine for one suite: its own nats-server, data dir and store, and
 * the compiled services started as real processes, the way `skiff up` starts them.
 */
export class Platform {
  readonly token = `test-${randomBytes(16).toString('hex')}`;
  readonly services: Service[] = [];
  gatewayUrl = '';
  store!: ImageStore;

  private constructor(readonly nats: NatsServer, readonly dataDir: string, readonly port: number) {}

  static async create(): Promise<Platform> {
    const nats = await startNats();
    const dataDir = mkdtempSync(join(tmpdir(), 'skiff-test-'));
    const p = new Platform(nats, dataDir, await freePort());
    p.store = await ImageStore.open(join(dataDir, 'store'));
    return p;
  }

  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      ...process.env,
      SKIFF_DATA_DIR: this.dataDir,
      SKIFF_NATS_URL: this.nats.url,
      SKIFF_PORT: String(this.port),
      SKIFF_ADMIN_TOKEN: this.token,
      SKIFF_HEARTBEAT_MS: '200',
      ...extra,
    };
  }

  /**
   * Starts one compiled service with its own NATS credentials; its logs go to
   * <data dir>/<name>.log. `wrapper` is a command line that runs it (e.g.
   * ['prlimit', '--nofile=300', '--']).
   */
  start(service: ServiceName, extraEnv: Record<string, string> = {}, name: string = service, wrapper: string[] = []): Service {
    const [command, ...args] = [...wrapper, process.execPath, ...serviceArgs(service)];
    const child = spawn(command!, args, {
      env: this.env({ ...this.nats.env(service), ...extraEnv }),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.pipe(createWriteStream(join(this.dataDir, `${name}.log`), { flags: 'a' }));
    const s: Service = {
      name,
      child,
      stop: () => stopProcess(child),
      kill: async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await gone;
      },
    };
    this.services.push(s);
    return s;
  }

  async startGateway(extraEnv: Record<string, string> = {}, wrapper: string[] = []): Promise<Service> {
    const s = this.start('gateway', extraEnv, 'gateway', wrapper);
    this.gatewayUrl = `http://127.0.0.1:${this.port}`;
    await waitUntil(async () => (await fetch(`${this.gatewayUrl}/healthz`).catch(() => undefined))?.ok === true, 'gateway', 60_000); // slow when the machine is busy, starting several services at once
    return s;
  }

  /**
   * Waits until the gateway has set up JetStream for async invocations (it does so after it
   * answers /healthz, and answers 503 SKIFF_QUEUE_UNAVAILABLE until then): a record it does not
   * have is 404 from that moment on.
   */
  async waitForAsync(ms = 30_000): Promise<void> {
    await waitUntil(async () => (await this.api('GET', '/v1/invocations/none.00000000000000000000000000000000')).status === 404, 'async invocations set up at the gateway', ms);
  }

  /** Waits until the scheduler's node table lists exactly these nodes. */
  async waitForNodes(ids: string[], ms = 10_000): Promise<void> {
    const want = [...ids].sort().join(',');
    await waitUntil(async () => {
      const res = await this.api('GET', '/v1/nodes');
      if (res.status !== 200) return false;
      const body = (await res.json()) as { nodes: { nodeId: string }[] };
      return body.nodes.map((n) => n.nodeId).sort().join(',') === want;
    }, `node table [${want}]`, ms);
  }

  /** Starts scheduler, one worker and the gateway, and waits until the worker is in the table. */
  async startAll(nodeId = 'node-a'): Promise<void> {
    this.start('scheduler');
    this.start('worker', { SKIFF_NODE_ID: nodeId }, `worker-${nodeId}`);
    await this.startGateway();
    await this.waitForNodes([nodeId]);
  }

  api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const init: RequestInit = { method, headers: { authorization: `Bearer ${this.token}`, ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' || body instanceof Uint8Array ? (body as NonNullable<RequestInit['body']>) : JSON.stringify(body);
      if (!(typeof body === 'string' || body instanceof Uint8Array)) (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
    return fetch(`${this.gatewayUrl}${path}`, init);
  }

  async buildBase(): Promise<void> {
    await buildBusyboxBase(this.store, { ref: 'busybox:latest' });
  }

  /** The node base image plus the in-container runtime, as node-runtime:latest. */
  async buildNodeRuntime(): Promise<void> {
    await buildNodeRuntime(this.store, { runtimeDir: join(REPO, 'functions/runtimes/node') });
  }

  /** Packs a function directory onto busybox and deploys it under `name`. */
  async deploy(name: string, dir: string, entrypoint: string[], settings: Record<string, unknown> = {}): Promise<Response> {
    await packFunction(this.store, { dir, base: 'busybox:latest', ref: `${name}:latest`, entrypoint });
    return this.api('PUT', `/v1/functions/${name}`, { image: `${name}:latest`, ...settings });
  }

  /** Packs a Node.js handler directory onto node-runtime and deploys it as a stream function. */
  async deployNode(name: string, dir: string, settings: Record<string, unknown> = {}, handler = 'index.mjs'): Promise<Response> {
    await packFunction(this.store, {
      dir,
      base: 'node-runtime:latest',
      ref: `${name}:latest`,
      entrypoint: ['/usr/local/bin/node', '/runtime/runtime.mjs'],
      env: { SKIFF_HANDLER: `/function/${handler}` },
    });
    return this.api('PUT', `/v1/functions/${name}`, { image: `${name}:latest`, mode: 'stream', ...settings });
  }

  async close(): Promise<void> {
    await Promise.all(this.services.map((s) => s.stop()));
    await this.nats.stop();
    if (process.env.SKIFF_KEEP_TEST_DATA) return;
    // A worker killed with SIGKILL leaves its image mounts behind; detach them before removing.
    unmountUnder(this.dataDir);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Lazily unmounts every mount point below `dir`, deepest first. */
export function unmountUnder(dir: string): void {
  const points = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((p): p is string => !!p && p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const p of points) execFileSync('umount', ['-l', p]);
}
