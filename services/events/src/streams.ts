import { jetstreamManager, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { JETSTREAM, durableTriggerStream } from '@skiff/contracts';
import { envInt, type Env } from '@skiff/service-kit';

const MS = 1_000_000; // nanoseconds per millisecond, JetStream's unit for durations

/** How much the event streams may hold; the operator's settings (SKIFF_ASYNC_*), checked by each service's config. */
export interface EventLimits {
  /** Async invocations waiting or running at most; the next one gets 503 SKIFF_QUEUE_FULL. */
  maxQueued: number;
  /** Bytes of them at most. */
  maxQueuedBytes: number;
  /** The largest message (an invocation's body and headers). */
  maxMessageBytes: number;
  /** Dead letters kept at most; over it, an invocation stays queued instead (never dropped). */
  maxDeadLetters: number;
  /** How long an invocation record is kept after its last change. */
  recordRetentionMs: number;
  /** Idempotency keys are deduplicated by JetStream within this window (and by records beyond it). */
  duplicateWindowMs: number;
  /** Outcome events waiting for their destination at most; over it, invocations wait (never dropped). */
  maxOutcomes: number;
  /**
   * Bytes each durable trigger's stream holds at most. JetStream sets them aside from its
   * max_file_store for every such stream, so they are a fraction of the queue's.
   */
  durableTriggerMaxBytes: number;
}

export const DEFAULT_EVENT_LIMITS: EventLimits = {
  maxQueued: 100_000,
  maxQueuedBytes: 1024 ** 3,
  maxMessageBytes: 8 * 1024 ** 2,
  maxDeadLetters: 10_000,
  recordRetentionMs: 7 * 24 * 3_600_000,
  duplicateWindowMs: 2 * 60_000,
  maxOutcomes: 100_000,
  durableTriggerMaxBytes: 64 * 1024 ** 2,
};

/** The largest outcome event: the invocation record, with a result of at most 64 KiB as base64, and its errors. */
export const MAX_OUTCOME_EVENT_BYTES = 256 * 1024;

/** The streams, as the platform needs them; all on file storage, so an accepted call survives a restart. */
export function streamConfigs(limits: EventLimits): (Partial<StreamConfig> & { name: string })[] {
  return [
    {
      name: JETSTREAM.asyncStream,
      subjects: ['skiff.async.>'],
      retention: 'workqueue',
      storage: 'file',
      discard: 'new',
      max_msgs: limits.maxQueued,
      max_bytes: limits.maxQueuedBytes,
      max_msg_size: limits.maxMessageBytes,
      duplicate_window: limits.duplicateWindowMs * MS,
      allow_direct: true,
    },
    {
      name: JETSTREAM.deadStream,
      subjects: ['skiff.dead.>'],
      retention: 'limits',
      storage: 'file',
      discard: 'new',
      max_msgs: limits.maxDeadLetters,
      max_msg_size: limits.maxMessageBytes,
      max_msgs_per_subject: 1,
      allow_direct: true,
    },
    {
      name: JETSTREAM.recordsStream,
      subjects: ['skiff.record.>'],
      retention: 'limits',
      storage: 'file',
      discard: 'old',
      max_msgs_per_subject: 1,
      max_age: limits.recordRetentionMs * MS,
      allow_direct: true,
    },
    {
      // Each function's trigger subjects: the last entry per function, an empty one once deleted.
      name: JETSTREAM.triggersStream,
      subjects: ['skiff.trigger.>'],
      retention: 'limits',
      storage: 'file',
      discard: 'old',
      max_msgs_per_subject: 1,
      max_msg_size: 64 * 1024,
      allow_direct: true,
    },
    {
      // The outbox of destinations: an outcome event is stored here before its invocation is
      // acknowledged, and removed once sent (or after its last attempt). Full: invocations wait.
      name: JETSTREAM.outcomesStream,
      subjects: ['skiff.outcome.>'],
      retention: 'workqueue',
      storage: 'file',
      discard: 'new',
      max_msgs: limits.maxOutcomes,
      max_bytes: 1024 ** 3,
      max_msg_size: MAX_OUTCOME_EVENT_BYTES + 8 * 1024,
      duplicate_window: limits.duplicateWindowMs * MS,
    },
    {
      // The last tick fired per scheduled function (an empty message once its schedule is gone).
      name: JETSTREAM.schedulesStream,
      subjects: ['skiff.tick.>'],
      retention: 'limits',
      storage: 'file',
      discard: 'old',
      max_msgs_per_subject: 1,
      max_msg_size: 4096,
      allow_direct: true,
    },
  ];
}

/**
 * The stream of a function's durable trigger: the messages published on its subjects, kept on
 * file until a scheduler has queued each as an async invocation (a work queue). Full, it refuses
 * new messages (a publisher waiting for its PubAck hears so) rather than drop old ones.
 */
export function durableTriggerStreamConfig(fn: string, subjects: string[], limits: EventLimits, maxEventBytes: number): Partial<StreamConfig> & { name: string; subjects: string[] } {
  return {
    name: durableTriggerStream(fn),
    subjects,
    retention: 'workqueue',
    storage: 'file',
    discard: 'new',
    max_msgs: limits.maxQueued,
    max_bytes: limits.durableTriggerMaxBytes,
    max_msg_size: maxEventBytes,
    duplicate_window: limits.duplicateWindowMs * MS,
  };
}

/**
 * Creates the streams, or brings existing ones to this configuration. Every service that uses
 * them calls it at start; the calls are idempotent, so the order services start in is free.
 */
export async function ensureEventStreams(nc: NatsConnection, limits: EventLimits): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(nc, { timeout: 5000 });
  for (const config of streamConfigs(limits)) {
    try {
      await jsm.streams.add(config);
    } catch (err) {
      if (!/already in use/i.test((err as Error).message)) throw err;
      await jsm.streams.update(config.name, config);
    }
  }
  return jsm;
}

/** SKIFF_ASYNC_MAX_QUEUED and the rest, read the same way by every service that ensures the streams. */
export function eventLimitsFrom(env: Env): EventLimits {
  const int = (name: string, fallback: number, min: number, max: number) => envInt(env, name, fallback, min, max);
  const d = DEFAULT_EVENT_LIMITS;
  return {
    maxQueued: int('SKIFF_ASYNC_MAX_QUEUED', d.maxQueued, 1, 100_000_000),
    maxQueuedBytes: int('SKIFF_ASYNC_MAX_BYTES', d.maxQueuedBytes, 1024 ** 2, 1024 ** 4),
    maxMessageBytes: d.maxMessageBytes,
    maxDeadLetters: int('SKIFF_DEAD_LETTERS_MAX', d.maxDeadLetters, 1, 10_000_000),
    recordRetentionMs: int('SKIFF_INVOCATION_RETENTION_MS', d.recordRetentionMs, 60_000, 365 * 24 * 3_600_000),
    duplicateWindowMs: d.duplicateWindowMs,
    maxOutcomes: int('SKIFF_OUTCOMES_MAX', d.maxOutcomes, 1, 10_000_000),
    durableTriggerMaxBytes: int('SKIFF_DURABLE_TRIGGER_MAX_BYTES', d.durableTriggerMaxBytes, 1024 ** 2, 1024 ** 4),
  };
}
