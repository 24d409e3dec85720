import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { z } from 'zod';
import { JETSTREAM, SUBJECTS } from '@skiff/contracts';

/** The last tick fired of a function's schedule, and the schedule it fired under. */
export interface LastTick {
  tick: string;
  cron: string;
  timeZone: string;
}

const lastTickSchema = z.object({ tick: z.iso.datetime(), cron: z.string(), timeZone: z.string() });

/**
 * Stream SKIFF_SCHEDULES, subject `skiff.tick.<fn>`, the last write kept: every scheduler writes
 * each tick it fires, so one that starts later knows from when on ticks were missed.
 */
export class LastTicks {
  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
  ) {}

  static async open(nc: NatsConnection): Promise<LastTicks> {
    return new LastTicks(jetstream(nc, { timeout: 5000 }), await jetstreamManager(nc, { timeout: 5000 }));
  }

  async get(fn: string): Promise<LastTick | undefined> {
    const m = await this.jsm.direct.getMessage(JETSTREAM.schedulesStream, { last_by_subj: SUBJECTS.tick(fn) });
    if (!m || m.data.length === 0) return undefined;
    const parsed = lastTickSchema.safeParse((() => { try { return JSON.parse(new TextDecoder().decode(m.data)); } catch { return undefined; } })());
    return parsed.success ? parsed.data : undefined;
  }

  async put(fn: string, last: LastTick): Promise<void> {
    await this.js.publish(SUBJECTS.tick(fn), JSON.stringify(last));
  }

  /** The schedule is gone: a schedule given again later starts anew, with nothing missed. */
  async clear(fn: string): Promise<void> {
    await this.js.publish(SUBJECTS.tick(fn), new Uint8Array(0));
  }
}
