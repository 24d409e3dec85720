import { eventLimitsFrom, type EventLimits } from '@skiff/events';
import { DEFAULT_OUTCOME_SENDER, type OutcomeSenderOptions } from './outcome-sender.js';
import { missedHeartbeatsFrom } from '@skiff/placement';
import { envInt, natsAuthFrom, type NatsAuth } from '@skiff/service-kit';

export interface SchedulerConfig {
  readonly natsUrl: string;
  /** SKIFF_NATS_USER/SKIFF_NATS_PASSWORD, SKIFF_NATS_TOKEN or SKIFF_NATS_CREDS. */
  readonly natsAuth: NatsAuth;
  /** A node that misses this many of its promised heartbeats leaves the table. */
  readonly missedHeartbeats: number;
  readonly logLevel: string;
  /** What the event streams may hold (SKIFF_ASYNC_MAX_QUEUED, …). */
  readonly eventLimits: EventLimits;
  /** Async invocations running at once, across all schedulers. */
  readonly asyncMaxInFlight: number;
  /** The platform's body limit (SKIFF_MAX_BODY_BYTES, as the gateway's): a larger trigger message is dropped. */
  readonly maxBodyBytes: number;
  /** Subject-triggered calls one scheduler runs at once (SKIFF_TRIGGER_MAX_IN_FLIGHT). */
  readonly triggerMaxInFlight: number;
  /** Sending outcome events to destinations (SKIFF_DESTINATION_ATTEMPTS, _BACKOFF_MS, _BACKOFF_CAP_MS). */
  readonly outcomeSender: OutcomeSenderOptions;
}

export type Env = Record<string, string | undefined>;

export function loadConfig(env: Env): SchedulerConfig {
  return Object.freeze({
    natsUrl: env.SKIFF_NATS_URL || 'nats://127.0.0.1:4222',
    natsAuth: natsAuthFrom(env),
    missedHeartbeats: missedHeartbeatsFrom(env.SKIFF_MISSED_HEARTBEATS),
    logLevel: env.SKIFF_LOG_LEVEL || 'info',
    eventLimits: eventLimitsFrom(env),
    asyncMaxInFlight: envInt(env, 'SKIFF_ASYNC_MAX_IN_FLIGHT', 256, 1, 100_000),
    maxBodyBytes: envInt(env, 'SKIFF_MAX_BODY_BYTES', 6 * 1024 * 1024, 1, 1024 * 1024 * 1024),
    triggerMaxInFlight: envInt(env, 'SKIFF_TRIGGER_MAX_IN_FLIGHT', 1024, 1, 100_000),
    outcomeSender: Object.freeze({
      attempts: envInt(env, 'SKIFF_DESTINATION_ATTEMPTS', DEFAULT_OUTCOME_SENDER.attempts, 1, 100),
      backoffMs: envInt(env, 'SKIFF_DESTINATION_BACKOFF_MS', DEFAULT_OUTCOME_SENDER.backoffMs, 10, 3_600_000),
      backoffCapMs: envInt(env, 'SKIFF_DESTINATION_BACKOFF_CAP_MS', DEFAULT_OUTCOME_SENDER.backoffCapMs, 10, 86_400_000),
      maxInFlight: DEFAULT_OUTCOME_SENDER.maxInFlight,
    }),
  });
}
