import { hostname, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_ID_PATTERN } from '@skiff/contracts';
import { envInt, natsAuthFrom, type NatsAuth } from '@skiff/service-kit';
import { defaultShare } from './slots.js';

export interface WorkerConfig {
  readonly nodeId: string;
  readonly natsUrl: string;
  /** SKIFF_NATS_USER/SKIFF_NATS_PASSWORD, SKIFF_NATS_TOKEN or SKIFF_NATS_CREDS. */
  readonly natsAuth: NatsAuth;
  readonly dataDir: string;
  readonly storeDir: string;
  /** This node's own state: unpacked images, per-invocation bundles. */
  readonly workDir: string;
  /** An OCI runtime with the runc command line: skiff-launch by default, runc or crun work too. */
  readonly runtime: string;
  readonly slots: number;
  /** Invocations that may wait for a slot; more are refused with SKIFF_OVERLOADED. */
  readonly maxQueued: number;
  /** Slots one function may hold at once (the rest stay for other functions). */
  readonly functionSlots: number;
  /** Invocations of one function that may wait for a slot. */
  readonly functionQueue: number;
  /** Longest line of a function's stdout or stderr the worker keeps; the rest is cut with a marker. */
  readonly maxLogLineBytes: number;
  /** First host uid/gid handed to functions' user namespaces (65536 ids each). */
  readonly uidBase: number;
  /** Memory all warm instances on the node may be given together, MiB. */
  readonly memoryBudgetMb: number;
  /** Of that, what the instances of one function may hold together (the rest stays for others), MiB. */
  readonly functionMemoryMb: number;
  readonly heartbeatMs: number;
  readonly maxOutputBytes: number;
  readonly logLevel: string;
  /** Stem cells kept waiting for stream functions new to the node (skiff-launch only); 0: none. */
  readonly stemCells: number;
  /** Functions (most recently started) that each keep one stem cell in their own uid range; 0: none. */
  readonly stemFunctions: number;
  /** The image stem cells run: the node runtime image. */
  readonly stemImage: string;
  /** skiff-stem, which mounts an adopting function's code into its stem cell. */
  readonly stemHelper: string;
}

export type Env = Record<string, string | undefined>;

const DEFAULT_RUNTIME = fileURLToPath(new URL('../../launcher/build/skiff-launch', import.meta.url));
const DEFAULT_STEM_HELPER = fileURLToPath(new URL('../native/build/skiff-stem', import.meta.url));


/** A node id is a subject token: the host name with anything else replaced. */
function defaultNodeId(): string {
  return hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 64) || 'node';
}

export function loadConfig(env: Env, cwd = process.cwd()): WorkerConfig {
  const nodeId = env.SKIFF_NODE_ID || defaultNodeId();
  if (!NODE_ID_PATTERN.test(nodeId)) throw new Error(`SKIFF_NODE_ID must match ${NODE_ID_PATTERN.source}, got "${nodeId}"`);
  const dataDir = resolve(cwd, env.SKIFF_DATA_DIR || '.skiff');
  const slots = envInt(env, 'SKIFF_WORKER_SLOTS', 16, 1, 4096);
  const maxQueued = envInt(env, 'SKIFF_WORKER_QUEUE', 1024, 0, 1_000_000);
  // Three quarters of the machine by default: the rest is for Skiff, exec functions and the OS.
  const memoryBudgetMb = envInt(env, 'SKIFF_WORKER_MEMORY_MB', Math.floor((totalmem() / 1024 / 1024) * 0.75), 16, 16 * 1024 * 1024);
  return Object.freeze({
    nodeId,
    natsUrl: env.SKIFF_NATS_URL || 'nats://127.0.0.1:4222',
    natsAuth: natsAuthFrom(env),
    dataDir,
    storeDir: resolve(dataDir, env.SKIFF_STORE_DIR || 'store'),
    workDir: resolve(dataDir, 'nodes', nodeId),
    runtime: env.SKIFF_RUNTIME || DEFAULT_RUNTIME,
    slots,
    maxQueued,
    functionSlots: envInt(env, 'SKIFF_WORKER_FUNCTION_SLOTS', defaultShare(slots), 1, slots),
    functionQueue: envInt(env, 'SKIFF_WORKER_FUNCTION_QUEUE', defaultShare(maxQueued), 0, maxQueued),
    maxLogLineBytes: envInt(env, 'SKIFF_MAX_LOG_LINE_BYTES', 16 * 1024, 256, 1024 * 1024),
    uidBase: envInt(env, 'SKIFF_UID_BASE', 100_000_000, 65_536, 2 ** 32 - 2 * 65_536),
    memoryBudgetMb,
    functionMemoryMb: envInt(env, 'SKIFF_WORKER_FUNCTION_MEMORY_MB', defaultShare(memoryBudgetMb), 16, memoryBudgetMb),
    heartbeatMs: envInt(env, 'SKIFF_HEARTBEAT_MS', 1000, 50, 60_000),
    maxOutputBytes: envInt(env, 'SKIFF_MAX_OUTPUT_BYTES', 6 * 1024 * 1024, 1, 1024 * 1024 * 1024),
    logLevel: env.SKIFF_LOG_LEVEL || 'info',
    stemCells: envInt(env, 'SKIFF_STEM_CELLS', 2, 0, 64),
    stemFunctions: envInt(env, 'SKIFF_STEM_FUNCTIONS', 8, 0, 1024),
    stemImage: env.SKIFF_STEM_IMAGE || 'node-runtime:latest',
    stemHelper: env.SKIFF_STEM_HELPER || DEFAULT_STEM_HELPER,
  });
}
