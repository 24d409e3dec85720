import { resolve } from 'node:path';
import { missedHeartbeatsFrom, natsAuthFrom, type NatsAuth } from '@skiff/contracts';

export interface GatewayConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly storeDir: string;
  readonly natsUrl: string;
  /** SKIFF_NATS_USER/SKIFF_NATS_PASSWORD, SKIFF_NATS_TOKEN or SKIFF_NATS_CREDS. */
  readonly natsAuth: NatsAuth;
  /** When set, this is the admin token (stored hashed); otherwise one is generated once. */
  readonly adminToken: string | undefined;
  readonly maxBodyBytes: number;
  readonly defaultTimeoutMs: number;
  readonly logLevel: string;
  /** Largest blob (image layer, config, manifest) accepted over /v2 or inside an image archive. */
  readonly maxBlobBytes: number;
  /** Largest oci-archive accepted by POST /v1/images. */
  readonly maxArchiveBytes: number;
  /** A /v2 blob upload untouched for this long is abandoned and its temporary file removed. */
  readonly uploadIdleMs: number;
  /** A worker node that misses this many heartbeats is no longer given invocations. */
  readonly missedHeartbeats: number;
  /**
   * How often the gateway compares stream functions' minInstances with the instances the
   * workers report and asks for the missing ones (it also does when a node joins or leaves).
   */
  readonly minInstancesCheckMs: number;
}

export type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

/** Turns the environment into the gateway's settings once, at start-up; throws naming the variable. */
export function loadConfig(env: Env, cwd = process.cwd()): GatewayConfig {
  const dataDir = resolve(cwd, env.SKIFF_DATA_DIR || '.skiff');
  const adminToken = env.SKIFF_ADMIN_TOKEN || undefined;
  if (adminToken !== undefined && adminToken.length < 16) {
    throw new Error('SKIFF_ADMIN_TOKEN must be at least 16 characters');
  }
  return Object.freeze({
    host: env.SKIFF_HOST || '127.0.0.1',
    port: int(env, 'SKIFF_PORT', 8080, 0, 65535),
    dataDir,
    storeDir: resolve(dataDir, env.SKIFF_STORE_DIR || 'store'),
    natsUrl: env.SKIFF_NATS_URL || 'nats://127.0.0.1:4222',
    natsAuth: natsAuthFrom(env),
    adminToken,
    maxBodyBytes: int(env, 'SKIFF_MAX_BODY_BYTES', 6 * 1024 * 1024, 1, 1024 * 1024 * 1024),
    defaultTimeoutMs: int(env, 'SKIFF_DEFAULT_TIMEOUT_MS', 30_000, 1, 900_000),
    logLevel: env.SKIFF_LOG_LEVEL || 'info',
    maxBlobBytes: int(env, 'SKIFF_MAX_BLOB_BYTES', 2 * 1024 ** 3, 1024, 1024 ** 4),
    maxArchiveBytes: int(env, 'SKIFF_MAX_ARCHIVE_BYTES', 8 * 1024 ** 3, 1024, 4 * 1024 ** 4),
    uploadIdleMs: int(env, 'SKIFF_UPLOAD_IDLE_MS', 15 * 60_000, 1000, 24 * 3_600_000),
    missedHeartbeats: missedHeartbeatsFrom(env.SKIFF_MISSED_HEARTBEATS),
    minInstancesCheckMs: int(env, 'SKIFF_MIN_INSTANCES_CHECK_MS', 5000, 100, 3_600_000),
  });
}
