import { missedHeartbeatsFrom } from '@skiff/placement';
import { natsAuthFrom, type NatsAuth } from '@skiff/service-kit';

export interface SchedulerConfig {
  readonly natsUrl: string;
  /** SKIFF_NATS_USER/SKIFF_NATS_PASSWORD, SKIFF_NATS_TOKEN or SKIFF_NATS_CREDS. */
  readonly natsAuth: NatsAuth;
  /** A node that misses this many of its promised heartbeats leaves the table. */
  readonly missedHeartbeats: number;
  readonly logLevel: string;
}

export type Env = Record<string, string | undefined>;

export function loadConfig(env: Env): SchedulerConfig {
  return Object.freeze({
    natsUrl: env.SKIFF_NATS_URL || 'nats://127.0.0.1:4222',
    natsAuth: natsAuthFrom(env),
    missedHeartbeats: missedHeartbeatsFrom(env.SKIFF_MISSED_HEARTBEATS),
    logLevel: env.SKIFF_LOG_LEVEL || 'info',
  });
}
