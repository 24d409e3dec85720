import { jetstreamManager } from '@nats-io/jetstream';
import { JETSTREAM, SETTING_NAMES, SUBJECTS, type RunSettings } from '@skiff/contracts';
import { TriggerTable, parseSchedule, type TriggerEntry } from '@skiff/events';
import type { Logger } from '@skiff/service-kit';
import type { Messaging } from './messaging.js';
import type { FunctionRecord, Registry } from './registry.js';
import { durableSubjects, type DurableTriggerStreams } from './durable-triggers.js';

/** After a failed write, the whole table is written again this often until that works. */
const RESYNC_MS = 5000;

export function triggerEntry(fn: FunctionRecord): TriggerEntry {
  return {
    fn: fn.name,
    fnVersion: fn.version,
    image: fn.imageDigest,
    mode: fn.mode,
    settings: Object.fromEntries(SETTING_NAMES.map((k) => [k, fn[k]])) as RunSettings,
    timeoutMs: fn.timeoutMs,
    subjects: fn.triggers?.subjects ?? [],
    ...(fn.destinations ? { destinations: fn.destinations } : {}),
    durable: durableSubjects(fn.triggers).length > 0,
    ...(fn.triggers?.schedule !== undefined ? { schedule: parseSchedule(fn.triggers.schedule) } : {}),
    createdAt: fn.createdAt,
  };
}

/**
 * Tells the schedulers each function's trigger subjects through SKIFF_TRIGGERS: the registry is
 * the gateway's own file, so what a scheduler needs of it is copied there at every deploy and
 * delete, and all of it once JetStream is set up at start (a fresh store is filled, and entries
 * of functions deleted meanwhile are emptied). A write that fails is made good by writing the
 * whole table again shortly.
 */
export class TriggerSync {
  private table: TriggerTable | undefined;
  private resync: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly messaging: Messaging,
    private readonly registry: Registry,
    private readonly durable: DurableTriggerStreams,
    private readonly log: Logger,
  ) {}

  /** Called once the event streams exist. */
  async ready(): Promise<void> {
    this.table = new TriggerTable(this.messaging.nc);
    await this.syncAll();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.resync);
  }

  deployed(fn: FunctionRecord): void {
    void this.write(() => this.table!.put(triggerEntry(fn)), fn.name);
  }

  deleted(name: string): void {
    void this.write(() => this.table!.clear(name), name);
  }

  private async write(work: () => Promise<void>, fn: string): Promise<void> {
    if (!this.table) return; // written with the rest once JetStream is set up
    try {
      await work();
    } catch (err) {
      this.log.warn({ err, fn }, `cannot write the function's trigger entry; writing them all again in ${RESYNC_MS} ms`);
      this.resyncSoon();
    }
  }

  private resyncSoon(): void {
    if (this.closed || this.resync) return;
    this.resync = setTimeout(() => {
      this.resync = undefined;
      this.syncAll().catch((err: unknown) => {
        this.log.warn({ err }, 'cannot write the trigger entries');
        this.resyncSoon();
      });
    }, RESYNC_MS);
  }

  private async syncAll(): Promise<void> {
    const table = this.table!;
    const functions = this.registry.list();
    const known = new Set(functions.map((f) => f.name));
    // Durable streams first: an entry that says durable names a stream the schedulers consume.
    for (const fn of functions) {
      const subjects = durableSubjects(fn.triggers);
      if (subjects.length > 0) await this.durable.ensure(fn.name, subjects);
    }
    await this.durable.removeStale(known);
    for (const fn of functions) await table.put(triggerEntry(fn));
    // Entries of functions this registry no longer has (deleted while this gateway was down).
    const jsm = await jetstreamManager(this.messaging.nc, { timeout: 5000 });
    const stale: string[] = [];
    for (let seq = 0; ; ) {
      const m = await jsm.direct.getMessage(JETSTREAM.triggersStream, { seq, next_by_subj: SUBJECTS.trigger('>') });
      if (!m) break;
      const name = m.subject.slice(SUBJECTS.trigger('').length);
      if (m.data.length > 0 && !known.has(name)) stale.push(name);
      seq = m.seq + 1;
    }
    for (const name of stale) await table.clear(name);
    this.log.info({ functions: functions.length, cleared: stale.length }, 'trigger entries written');
  }
}
