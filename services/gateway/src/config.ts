import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { MAX_TIMEOUT_MS } from '@skiff/contracts';
import { eventLimitsFrom, type EventLimits } from '@skiff/events';
import { missedHeartbeatsFrom } from '@skiff/placement';
import { envInt, natsAuthFrom, type NatsAuth } from '@skiff/service-kit';

export interface GatewayConfig {
  /** What the event streams may hold (SKIFF_ASYNC_MAX_QUEUED, …), as the schedulers read it. */
  readonly eventLimits: EventLimits;
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
  /** A request's line and headers must arrive within this, counted from its first byte. */
  readonly headersTimeoutMs: number;
  /** A body of at most maxBodyBytes must arrive within this after its headers. */
  readonly bodyTimeoutMs: number;
  /** A connection with no bytes either way (none sent yet, between requests, a stalled upload) is closed after this. */
  readonly idleTimeoutMs: number;
  /** Connections one client address may hold at once; more are closed as they come. */
  readonly maxConnectionsPerAddress: number;
  /** Connections of all clients at once, kept below the open-file limit; more are closed as they come. */
  readonly maxConnections: number;
}

export type Env = Record<string, string | undefined>;


/** This process's soft limit of open files (Node.js raises it to the hard limit as it starts). */
export function openFileLimit(): number {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (line) return Number(line[1]);
  } catch {}
  return 1024;
}

/** Files the gateway keeps for itself (NATS, SQLite, logs, store reads) before counting connections. */
const OWN_FILES = 64;

/**
 * The most connections the open-file limit allows: each connection may hold a second file (a
 * /v2 blob upload or an image archive being written), so half of what the gateway's own files
 * leave. Past the limit, accept() fails and SQLite, the store and NATS could no longer open files.
 */
export function connectionsWithin(fileLimit: number): number {
  return Math.max(1, Math.floor((fileLimit - OWN_FILES) / 2));
}

/** Turns the environment into the gateway's settings once, at start-up; throws naming the variable. */
export function loadConfig(env: Env, cwd = process.cwd(), fileLimit = openFileLimit()): GatewayConfig {
  const dataDir = resolve(cwd, env.SKIFF_DATA_DIR || '.skiff');
  const adminToken = env.SKIFF_ADMIN_TOKEN || undefined;
  if (adminToken !== undefined && adminToken.length < 16) {
    throw new Error('SKIFF_ADMIN_TOKEN must be at least 16 characters');
  }
  const maxConnections = connectionsWithin(fileLimit);
  return Object.freeze({
    host: env.SKIFF_HOST || '127.0.0.1',
    port: envInt(env, 'SKIFF_PORT', 8080, 0, 65535),
    dataDir,
    storeDir: resolve(dataDir, env.SKIFF_STORE_DIR || 'store'),
    natsUrl: env.SKIFF_NATS_URL || 'nats://127.0.0.1:4222',
    natsAuth: natsAuthFrom(env),
    adminToken,
    maxBodyBytes: envInt(env, 'SKIFF_MAX_BODY_BYTES', 6 * 1024 * 1024, 1, 1024 * 1024 * 1024),
    defaultTimeoutMs: envInt(env, 'SKIFF_DEFAULT_TIMEOUT_MS', 30_000, 1, MAX_TIMEOUT_MS),
    logLevel: env.SKIFF_LOG_LEVEL || 'info',
    maxBlobBytes: envInt(env, 'SKIFF_MAX_BLOB_BYTES', 2 * 1024 ** 3, 1024, 1024 ** 4),
    maxArchiveBytes: envInt(env, 'SKIFF_MAX_ARCHIVE_BYTES', 8 * 1024 ** 3, 1024, 4 * 1024 ** 4),
    uploadIdleMs: envInt(env, 'SKIFF_UPLOAD_IDLE_MS', 15 * 60_000, 1000, 24 * 3_600_000),
    missedHeartbeats: missedHeartbeatsFrom(env.SKIFF_MISSED_HEARTBEATS),
    minInstancesCheckMs: envInt(env, 'SKIFF_MIN_INSTANCES_CHECK_MS', 5000, 100, 3_600_000),
    headersTimeoutMs: envInt(env, 'SKIFF_HEADERS_TIMEOUT_MS', 10_000, 100, 600_000),
    bodyTimeoutMs: envInt(env, 'SKIFF_BODY_TIMEOUT_MS', 60_000, 100, 3_600_000),
    idleTimeoutMs: envInt(env, 'SKIFF_IDLE_TIMEOUT_MS', 30_000, 100, 3_600_000),
    maxConnectionsPerAddress: envInt(env, 'SKIFF_MAX_CONNECTIONS_PER_ADDRESS', 256, 1, 1_000_000),
    eventLimits: eventLimitsFrom(env),
    maxConnections: envInt(env, 'SKIFF_MAX_CONNECTIONS', Math.min(8192, maxConnections), 1, maxConnections, ` (the open-file limit is ${fileLimit})`),
  });
}
