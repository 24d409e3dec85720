import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { JETSTREAM, SUBJECTS } from '@skiff/contracts';
import { AsyncQueue, InvocationRecords, LastTicks, MAX_MISSED_TICKS, Ticks, entryInvocation, invocationId, sameSchedule, type InvocationRecord, type TriggerEntry } from '@skiff/events';
import type { Logger } from '@skiff/service-kit';
import { SpanKind, failed, meter, tracer, under, type Counter } from '@skiff/telemetry';

const TRACER = tracer('@skiff/scheduler');

/**
 * A tick due at most this long ago when a scheduler learns a schedule, and not queued by anyone,
 * is fired as usual, only late (a scheduler restarted at once misses nothing); older ones are missed.
 */
export const LATE_TICK_GRACE_MS = 3000;
/** setTimeout's longest delay; a tick further off is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Scheduled {
  entry: TriggerEntry & { schedule: NonNullable<TriggerEntry['schedule']> };
  ticks: Ticks;
  /** The tick last fired (or the moment the schedule was learned): the timer waits for the next after it. */
  after: Date;
  timer: NodeJS.Timeout | undefined;
}

const tickKey = (tick: Date) => `schedule:${tick.toISOString()}`;

/**
 * Schedules (`triggers.schedule`): every scheduler keeps a timer per scheduled function and, at
 * each tick, queues an async invocation whose id and JetStream message id come from the function
 * and the tick, so of every scheduler's copy JetStream keeps one (its duplicate window) and the
 * tick runs once, with the records, retries and dead letters of any async invocation. Each fired
 * tick is noted in SKIFF_SCHEDULES; a scheduler that learns a schedule looks there for ticks due
 * while none ran, reports each one not queued by anyone, and runs it late if catchUp is on.
 * Told of every function's trigger entry by the scheduler's one watcher (`update`).
 */
export class Schedules {
  private readonly functions = new Map<string, Scheduled>();
  /** Each function's changes in order: learning a schedule reads JetStream first. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly queue: AsyncQueue;
  private readonly missedTicks: Counter;
  private stopped = false;

  private constructor(
    nc: NatsConnection,
    private readonly records: InvocationRecords,
    private readonly lastTicks: LastTicks,
    private readonly jsm: JetStreamManager,
    private readonly log: Logger,
  ) {
    this.queue = new AsyncQueue(nc);
    this.missedTicks = meter('@skiff/scheduler').createCounter('skiff.schedule.ticks.missed', { unit: '{tick}', description: 'Scheduled ticks found missed (due while no scheduler ran), by function and whether they were run late' });
  }

  static async open(nc: NatsConnection, records: InvocationRecords, log: Logger): Promise<Schedules> {
    return new Schedules(nc, records, await LastTicks.open(nc), await jetstreamManager(nc, { timeout: 5000 }), log);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const f of this.functions.values()) clearTimeout(f.timer);
    this.functions.clear();
    await Promise.allSettled([...this.chains.values()]);
  }

  /** A function's trigger entry, new or changed (undefined: deleted); applied in order per function. */
  update(fn: string, entry: TriggerEntry | undefined): void {
    const next = (this.chains.get(fn) ?? Promise.resolve())
      .then(() => this.apply(fn, entry))
      .catch((err: unknown) => this.log.error({ err, fn }, 'cannot apply the schedule'));
    this.chains.set(fn, next);
    void next.finally(() => this.chains.get(fn) === next && this.chains.delete(fn));
  }

  private async apply(fn: string, entry: TriggerEntry | undefined): Promise<void> {
    if (this.stopped) return;
    const known = this.functions.get(fn);
    if (!entry?.schedule) {
      if (!known) return;
      // Deleted, or its schedule removed: no tick fires from now on, and one given again later starts anew.
      clearTimeout(known.timer);
      this.functions.delete(fn);
      this.log.info({ fn }, 'schedule removed');
      await this.lastTicks.clear(fn);
      return;
    }
    const scheduled = { ...entry, schedule: entry.schedule };
    if (known && sameSchedule(known.entry.schedule, entry.schedule)) {
      known.entry = scheduled; // a new version or catchUp setting: used from the next tick on
      this.log.info({ fn, fnVersion: entry.fnVersion, ...entry.schedule }, 'schedule');
      return;
    }
    if (known) clearTimeout(known.timer);
    const now = new Date();
    const f: Scheduled = { entry: scheduled, ticks: new Ticks(entry.schedule), after: now, timer: undefined };
    this.functions.set(fn, f);
    this.log.info({ fn, fnVersion: entry.fnVersion, ...entry.schedule }, 'schedule');
    // A schedule this process had already (only changed) has no missed ticks to look for.
    if (!known) await this.catchUp(fn, f, now);
    if (this.functions.get(fn) === f) this.arm(fn, f);
  }

  /**
   * Ticks due since the last one fired, while no scheduler ran. One queued or recorded already
   * was fired by another scheduler; a recent one is fired now, late; an older one is missed:
   * reported by the one scheduler whose record or queued copy JetStream takes (so two starting
   * at once report it once), and run late with catchUp, or recorded skipped.
   */
  private async catchUp(fn: string, f: Scheduled, now: Date): Promise<void> {
    const last = await this.lastTicks.get(fn);
    const since = last ? new Date(last.tick) : undefined;
    // Never fired, fired under another cron or zone, or by an earlier function of this name: nothing was missed.
    if (!last || !since || !sameSchedule(last, f.entry.schedule) || (f.entry.createdAt && since < new Date(f.entry.createdAt))) return;
    const { catchUp, cron, timeZone } = f.entry.schedule;
    const due = f.ticks.between(since, now);
    if (due.more) {
      this.log.warn({ fn, cron, timeZone, lastTick: last.tick, before: due.ticks[0]?.toISOString() }, `more than ${MAX_MISSED_TICKS} ticks were missed; only the latest ${MAX_MISSED_TICKS} are ${catchUp ? 'run' : 'recorded'}, the earlier ones are not`);
    }
    const lateFrom = now.getTime() - LATE_TICK_GRACE_MS;
    for (const tick of due.ticks) {
      const id = invocationId(fn, tickKey(tick));
      if (await this.queuedOrRecorded(id)) continue; // another scheduler fired it
      if (tick.getTime() > lateFrom) {
        await this.fire(fn, f, tick, false);
        continue;
      }
      const reported = catchUp ? (await this.fire(fn, f, tick, true)) === 'queued' : await this.records.putIfAbsent(this.skippedRecord(fn, f, id, tick));
      if (!reported) continue; // another scheduler took it a moment ago
      this.missedTicks.add(1, { 'skiff.function': fn, 'skiff.schedule.catch_up': catchUp });
      this.log.warn({ fn, id, tick: tick.toISOString(), cron, timeZone, catchUp }, catchUp ? 'scheduled tick missed while no scheduler ran; running it late (catchUp)' : 'scheduled tick missed while no scheduler ran; not run (catchUp is off)');
    }
  }

  private skippedRecord(fn: string, f: Scheduled, id: string, tick: Date): InvocationRecord {
    const { cron, timeZone } = f.entry.schedule;
    return {
      id,
      fn,
      fnVersion: f.entry.fnVersion,
      status: 'skipped',
      // When it was due: the records of ticks sort by it.
      acceptedAt: tick.toISOString(),
      updatedAt: new Date().toISOString(),
      idempotencyKey: tickKey(tick),
      attempts: [],
      error: { code: 'SKIFF_TICK_MISSED', detail: `the tick of ${tick.toISOString()} ("${cron}", ${timeZone}) was due while no scheduler ran; catchUp is off, so it does not run` },
    };
  }

  /** The invocation is on the queue or has a record: the duplicate window is only minutes, the records are kept longer. */
  private async queuedOrRecorded(id: string): Promise<boolean> {
    if (await this.records.get(id)) return true;
    return (await this.jsm.direct.getMessage(JETSTREAM.asyncStream, { last_by_subj: SUBJECTS.asyncInvocation(id) })) !== null;
  }

  /** Waits for the next tick after `f.after` and fires it, then the one after that. */
  private arm(fn: string, f: Scheduled): void {
    clearTimeout(f.timer);
    const next = f.ticks.next(f.after);
    if (!next) {
      this.log.info({ fn, ...f.entry.schedule }, 'the schedule has no more ticks');
      return;
    }
    f.timer = setTimeout(() => {
      if (this.functions.get(fn) !== f) return;
      if (Date.now() < next.getTime()) return this.arm(fn, f); // a step of a long wait
      f.after = next;
      void this.fire(fn, f, next, false).then(() => this.noteFired(fn, f, next));
      this.arm(fn, f);
    }, Math.min(MAX_TIMER_MS, Math.max(0, next.getTime() - Date.now())));
  }

  /** Queues the tick's invocation; the same id and message id from every scheduler, so JetStream keeps one. */
  private async fire(fn: string, f: Scheduled, tick: Date, late: boolean): Promise<'queued' | 'duplicate' | 'failed'> {
    const { entry } = f;
    const key = tickKey(tick);
    const id = invocationId(fn, key);
    const at = tick.toISOString();
    const headers: Record<string, string[]> = { 'Skiff-Schedule-Tick': [at], 'Skiff-Schedule-Cron': [entry.schedule.cron], 'Skiff-Schedule-Time-Zone': [entry.schedule.timeZone] };
    if (late) headers['Skiff-Schedule-Catch-Up'] = ['true'];
    // Each tick starts a trace; of the schedulers' copies, the one JetStream keeps carries its span.
    const span = TRACER.startSpan('scheduled tick', { kind: SpanKind.PRODUCER, attributes: { 'faas.name': fn, 'faas.invocation_id': id, 'faas.cron': entry.schedule.cron, 'faas.time': at, 'skiff.schedule.late': late } });
    const inv = under({ ...entryInvocation(entry, id, { subject: SUBJECTS.scheduleEvent(fn), id, headers }, 'application/json'), idempotencyKey: key }, span);
    const body = new TextEncoder().encode(JSON.stringify({ tick: at, cron: entry.schedule.cron, timeZone: entry.schedule.timeZone, catchUp: late }));
    try {
      const { duplicate } = await this.queue.enqueue(inv, entry.timeoutMs, body, id, entry.destinations);
      span.setAttribute('skiff.duplicate', duplicate);
      this.log.debug({ fn, id, tick: at, duplicate, late }, 'tick');
      return duplicate ? 'duplicate' : 'queued';
    } catch (err) {
      failed(span, err);
      this.log.error({ err: (err as Error).message, fn, id, tick: at }, 'cannot queue the scheduled tick; it does not run');
      return 'failed';
    } finally {
      span.end();
    }
  }

  private async noteFired(fn: string, f: Scheduled, tick: Date): Promise<void> {
    if (this.functions.get(fn) !== f) return; // removed meanwhile: its last tick is cleared
    await this.lastTicks.put(fn, { tick: tick.toISOString(), cron: f.entry.schedule.cron, timeZone: f.entry.schedule.timeZone }).catch((err: unknown) => this.log.warn({ err: (err as Error).message, fn }, 'cannot note the last tick fired'));
  }
}
