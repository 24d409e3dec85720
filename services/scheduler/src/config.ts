export interface SchedulerConfig {
  readonly natsUrl: string;
  /** A node that misses this many of its promised heartbeats leaves the table. */
  readonly missedHeartbeats: number;
  readonly logLevel: string;
}

export type Env = Record<string, string | undefined>;

export function loadConfig(env: Env): SchedulerConfig {
  const raw = env.SKIFF_MISSED_HEARTBEATS ?? '3';
  const missed = Number(raw);
  if (!Number.isInteger(missed) || missed < 1 || missed > 100) {
    throw new Error(`SKIFF_MISSED_HEARTBEATS must be an integer from 1 to 100, got "${raw}"`);
  }
  return Object.freeze({
    natsUrl: env.SKIFF_NATS_URL || 'nats://127.0.0.1:4222',
    missedHeartbeats: missed,
    logLevel: env.SKIFF_LOG_LEVEL || 'info',
  });
}
