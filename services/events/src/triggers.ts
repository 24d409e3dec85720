import { DeliverPolicy, jetstream, type ConsumerMessages, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { z } from 'zod';
import { FUNCTION_MODES, FUNCTION_NAME_PATTERN, JETSTREAM, MAX_TRIGGER_SUBJECTS, SUBJECTS, destinationsSchema, settingsHeader, encodeSettings, triggerSubjectProblem, type Destinations, type FunctionMode, type Invocation, type RunSettings, type TriggerEvent } from '@skiff/contracts';
import { scheduleProblem, type Schedule } from './schedule.js';

/**
 * One function's triggers as the schedulers learn them (stream SKIFF_TRIGGERS, subject
 * `skiff.trigger.<fn>`, the last write kept): the subjects, the schedule, and everything an
 * Invocation of its current version needs, so a scheduler never reads the gateway's registry.
 */
export interface TriggerEntry {
  fn: string;
  fnVersion: number;
  image: string;
  mode: FunctionMode;
  settings: RunSettings;
  timeoutMs: number;
  subjects: string[];
  /** Where the outcome of an invocation queued from this entry goes (AsyncQueue.enqueue). */
  destinations?: Destinations | undefined;
  /** The subjects' messages wait in the function's durable trigger stream, and run as async invocations. */
  durable: boolean;
  /** triggers.schedule with its defaults, if the function has one. */
  schedule?: Schedule | undefined;
  /**
   * When the function was created (deleting it and creating it again starts anew): ticks fired
   * before then belong to an earlier function of the same name and count for nothing.
   */
  createdAt?: string | undefined;
}

const entrySchema = z.object({
  fn: z.string().regex(FUNCTION_NAME_PATTERN),
  fnVersion: z.number().int().positive(),
  image: z.string().regex(/^sha256:[a-f0-9]{64}$/),
  mode: z.enum(FUNCTION_MODES),
  settings: settingsHeader,
  timeoutMs: z.number().int().positive(),
  // Checked again on receipt: a scheduler subscribes to nothing the gateway would refuse.
  subjects: z.array(z.string().refine((s) => triggerSubjectProblem(s) === undefined, 'must be an allowed trigger subject')).max(MAX_TRIGGER_SUBJECTS),
  destinations: destinationsSchema.optional(),
  durable: z.boolean().default(false),
  schedule: z
    .object({ cron: z.string(), timeZone: z.string(), catchUp: z.boolean() })
    .refine((s) => scheduleProblem(s) === undefined, 'must be a valid schedule')
    .optional(),
  createdAt: z.iso.datetime().optional(),
});

/**
 * The call an event makes of the entry's function version: what the subject triggers send a
 * worker, and what schedules and durable triggers queue as async invocations. `callId` is the
 * invocation id for those; the deadline is counted from now (async delivery sets its own).
 */
export function entryInvocation(entry: TriggerEntry, callId: string, event: TriggerEvent, contentType?: string): Invocation {
  return {
    callId,
    deadline: Date.now() + entry.timeoutMs,
    fn: entry.fn,
    fnVersion: entry.fnVersion,
    image: entry.image,
    mode: entry.mode,
    settings: entry.settings,
    ...(contentType ? { contentType } : {}),
    event,
  };
}

/** How long the gateway waits for JetStream to store an entry. */
const PUB_ACK_TIMEOUT_MS = 5000;

/** The gateway's side: writes a function's entry at deploy, an empty one at delete. */
export class TriggerTable {
  private readonly js: JetStreamClient;

  constructor(nc: NatsConnection) {
    this.js = jetstream(nc, { timeout: PUB_ACK_TIMEOUT_MS });
  }

  async put(entry: TriggerEntry): Promise<void> {
    await this.js.publish(SUBJECTS.trigger(entry.fn), JSON.stringify({ ...entry, settings: encodeSettings(entry.settings) }));
  }

  /** An empty entry: the function has no triggers (deleted). */
  async clear(fn: string): Promise<void> {
    await this.js.publish(SUBJECTS.trigger(fn), new Uint8Array(0));
  }
}

/**
 * The scheduler's side: an ordered consumer from the last entry of every function on, then
 * every change, so a scheduler started at any time learns the whole table. `onChange` gets the
 * function and its entry (undefined when it has no triggers any more).
 */
export async function watchTriggers(nc: NatsConnection, onChange: (fn: string, entry: TriggerEntry | undefined) => void, onBad: (subject: string, err: unknown) => void): Promise<ConsumerMessages> {
  // The stream holds skiff.trigger.> only: no filter (nats-server 2.9 has no filter_subjects).
  const consumer = await jetstream(nc, { timeout: 5000 }).consumers.get(JETSTREAM.triggersStream, { deliver_policy: DeliverPolicy.LastPerSubject });
  const messages = await consumer.consume();
  void (async () => {
    // The ordered consumer recreates itself after a reset; an error out of it must not end the process.
    try {
      for await (const m of messages) {
        const fn = m.subject.slice(SUBJECTS.trigger('').length);
        if (m.data.length === 0) {
          onChange(fn, undefined);
          continue;
        }
        try {
          const entry = entrySchema.parse(JSON.parse(new TextDecoder().decode(m.data)));
          if (entry.fn !== fn) throw new Error(`entry for ${entry.fn} on ${m.subject}`);
          onChange(fn, entry);
        } catch (err) {
          onBad(m.subject, err);
        }
      }
    } catch (err) {
      onBad(JETSTREAM.triggersStream, err);
    }
  })();
  return messages;
}
