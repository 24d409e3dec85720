import { jetstreamManager, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import { SkiffError, durableTriggerStream } from '@skiff/contracts';
import { durableTriggerStreamConfig, type EventLimits } from '@skiff/events';
import type { Logger } from '@skiff/service-kit';
import type { Messaging } from './messaging.js';
import type { FunctionTriggers } from './registry.js';

/** The subjects whose messages a function's triggers keep in JetStream; none unless durable. */
export const durableSubjects = (t: FunctionTriggers | undefined): string[] => (t?.durable ? (t.subjects ?? []) : []);

const DURABLE_PREFIX = durableTriggerStream('');

/**
 * The JetStream streams behind durable subject triggers, one per function, owned by the
 * gateway: made or changed before a deploy that names them is stored (so no message published
 * after the deploy answered is missed, and a refused deploy changes nothing), removed with the
 * function. The schedulers only consume them.
 */
export class DurableTriggerStreams {
  private jsm: JetStreamManager | undefined;

  constructor(
    private readonly messaging: Messaging,
    private readonly limits: EventLimits,
    /** The largest message a durable subject takes: the platform's body limit. */
    private readonly maxEventBytes: number,
    private readonly log: Logger,
  ) {}

  /**
   * Brings the function's stream to the triggers it is being deployed with: created or given
   * the new subjects, or removed when they are no longer durable — refused while messages
   * still wait in it, which would be lost.
   */
  async deploying(fn: string, before: FunctionTriggers | undefined, after: FunctionTriggers | undefined): Promise<void> {
    const subjects = durableSubjects(after);
    if (subjects.length > 0) return this.ensure(fn, subjects);
    if (durableSubjects(before).length === 0) return;
    const waiting = await this.waiting(fn);
    if (waiting > 0) {
      throw new SkiffError('SKIFF_EVENTS_PENDING', `body.triggers.durable: ${waiting} messages still wait in the durable trigger of "${fn}"; they run once a scheduler queues them — deploy again then`, {
        errors: [{ field: 'body.triggers.durable', message: `${waiting} messages still wait` }],
      });
    }
    await this.remove(fn);
  }

  /** Creates the stream or updates its subjects; a subject another function's stream holds is SKIFF_TRIGGER_TAKEN. */
  async ensure(fn: string, subjects: string[]): Promise<void> {
    const jsm = await this.manager();
    const config = durableTriggerStreamConfig(fn, subjects, this.limits, this.maxEventBytes);
    try {
      try {
        await jsm.streams.add(config);
      } catch (err) {
        if (!/already in use/i.test((err as Error).message)) throw err;
        await jsm.streams.update(config.name, config);
      }
    } catch (err) {
      if (err instanceof JetStreamApiError && /overlap/i.test(err.message)) throw await this.taken(jsm, fn, subjects, err);
      throw unavailable(err);
    }
  }

  /** Removes the stream with whatever waits in it (the function is gone); nothing if there is none. */
  async remove(fn: string): Promise<void> {
    const jsm = await this.manager();
    try {
      const info = await jsm.streams.info(durableTriggerStream(fn));
      await jsm.streams.delete(durableTriggerStream(fn));
      if (info.state.messages > 0) this.log.warn({ fn, messages: info.state.messages }, 'durable trigger removed with messages that had not run');
    } catch (err) {
      if (err instanceof JetStreamApiError && /not found/i.test(err.message)) return;
      throw unavailable(err);
    }
  }

  /** Streams of functions that are gone (deleted while this gateway could not remove them). */
  async removeStale(known: Set<string>): Promise<void> {
    const jsm = await this.manager();
    const stale: string[] = [];
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(DURABLE_PREFIX) && !known.has(name.slice(DURABLE_PREFIX.length))) stale.push(name.slice(DURABLE_PREFIX.length));
    }
    for (const fn of stale) await this.remove(fn);
  }

  private async waiting(fn: string): Promise<number> {
    const jsm = await this.manager();
    try {
      return (await jsm.streams.info(durableTriggerStream(fn))).state.messages;
    } catch (err) {
      if (err instanceof JetStreamApiError && /not found/i.test(err.message)) return 0;
      throw unavailable(err);
    }
  }

  /** Names the function whose durable subjects overlap one of these. */
  private async taken(jsm: JetStreamManager, fn: string, subjects: string[], cause: unknown): Promise<SkiffError> {
    for (const [i, subject] of subjects.entries()) {
      const holder = await jsm.streams.find(subject).catch(() => undefined);
      if (holder && holder !== durableTriggerStream(fn)) {
        const field = `body.triggers.subjects.${i}`;
        const owner = holder.startsWith(DURABLE_PREFIX) ? `function "${holder.slice(DURABLE_PREFIX.length)}"'s durable trigger` : `stream "${holder}"`;
        return new SkiffError('SKIFF_TRIGGER_TAKEN', `${field}: subject "${subject}" overlaps ${owner}; durable subjects are kept by one stream each`, { errors: [{ field, message: `overlaps ${owner}` }], cause });
      }
    }
    return new SkiffError('SKIFF_TRIGGER_TAKEN', `body.triggers.subjects: the subjects overlap another stream's (${(cause as Error).message})`, { cause });
  }

  private async manager(): Promise<JetStreamManager> {
    if (!this.messaging.connected) throw new SkiffError('SKIFF_NATS_UNAVAILABLE', 'the gateway is not connected to NATS; a durable trigger cannot be set up now');
    try {
      return (this.jsm ??= await jetstreamManager(this.messaging.nc, { timeout: 5000 }));
    } catch (err) {
      throw unavailable(err);
    }
  }
}

function unavailable(err: unknown): SkiffError {
  if (err instanceof SkiffError) return err;
  if (err instanceof JetStreamApiError && /insufficient storage/i.test(err.message)) {
    return new SkiffError('SKIFF_QUEUE_FULL', `JetStream has no room for another durable trigger stream (each sets aside SKIFF_DURABLE_TRIGGER_MAX_BYTES of nats-server's max_file_store); nothing was deployed`, { cause: err });
  }
  return new SkiffError('SKIFF_QUEUE_UNAVAILABLE', `JetStream did not set up the durable trigger (${(err as Error).message}); nothing was deployed, try again shortly`, { cause: err });
}
