import { Cron } from 'croner';

/** `triggers.schedule` as a user writes it: a cron expression, or one with its options. */
export type ScheduleSetting = string | { cron: string; timeZone?: string | undefined; catchUp?: boolean | undefined };

/** A schedule with its defaults filled in, as the schedulers keep it. */
export interface Schedule {
  /** 5 fields (minute …), or 6 with seconds first. */
  cron: string;
  /** IANA time zone the fields are read in. */
  timeZone: string;
  /** Whether ticks missed while no scheduler ran are run late (true) or only reported (false). */
  catchUp: boolean;
}

export const DEFAULT_TIME_ZONE = 'UTC';
/** Bounds the API document states too (openapi/gateway.yaml, FunctionSettings.triggers.schedule). */
export const MAX_CRON_LENGTH = 256;
export const MAX_TIME_ZONE_LENGTH = 64;
/**
 * Missed ticks found at a scheduler's start are handled (recorded, or run with catchUp) up to
 * this many, the latest ones: an outage under a per-second schedule must not become millions.
 */
export const MAX_MISSED_TICKS = 100;

/** A problem with a schedule: `field` is below `triggers.schedule` ('' for the string form itself). */
export interface ScheduleProblem {
  field: '' | '.cron' | '.timeZone';
  message: string;
}

/** What is wrong with the setting, or undefined; the gateway, function.yaml and the schedulers share it. */
export function scheduleProblem(setting: ScheduleSetting): ScheduleProblem | undefined {
  const cronField = typeof setting === 'string' ? '' : '.cron';
  const cron = typeof setting === 'string' ? setting : setting.cron;
  const timeZone = typeof setting === 'string' ? DEFAULT_TIME_ZONE : (setting.timeZone ?? DEFAULT_TIME_ZONE);
  if (cron.length > MAX_CRON_LENGTH) return { field: cronField, message: `must be at most ${MAX_CRON_LENGTH} characters` };
  // croner also takes nicknames (@daily) and a year field; the API promises 5 or 6 fields only.
  const fields = cron.trim().split(/\s+/).length;
  if (cron.trim() === '' || (fields !== 5 && fields !== 6)) return { field: cronField, message: `must be a cron expression of 5 fields (minute hour day month weekday) or 6 (seconds first), not ${cron.trim() === '' ? 0 : fields}` };
  if (timeZone.length > MAX_TIME_ZONE_LENGTH || !isTimeZone(timeZone)) return { field: '.timeZone', message: `"${timeZone}" is not an IANA time zone (e.g. Europe/Berlin)` };
  let job: Cron;
  try {
    job = cronOf(cron, timeZone);
  } catch (err) {
    return { field: cronField, message: `is not a valid cron expression: ${(err as Error).message.replace(/^CronPattern: /, '')}` };
  }
  if (job.nextRun() === null) return { field: cronField, message: 'never fires (no date matches it)' };
  return undefined;
}

/** The setting with its defaults; throws if scheduleProblem would name one. */
export function parseSchedule(setting: ScheduleSetting): Schedule {
  const problem = scheduleProblem(setting);
  if (problem) throw new Error(`triggers.schedule${problem.field}: ${problem.message}`);
  if (typeof setting === 'string') return { cron: setting.trim(), timeZone: DEFAULT_TIME_ZONE, catchUp: false };
  return { cron: setting.cron.trim(), timeZone: setting.timeZone ?? DEFAULT_TIME_ZONE, catchUp: setting.catchUp ?? false };
}

/** The instants a schedule fires at, computed by croner in the schedule's time zone. */
export class Ticks {
  private readonly job: Cron;

  constructor(readonly schedule: Schedule) {
    this.job = cronOf(schedule.cron, schedule.timeZone);
  }

  /** The first tick strictly after `after`, or undefined if there is none any more. */
  next(after: Date): Date | undefined {
    return this.job.nextRun(after) ?? undefined;
  }

  /**
   * The ticks after `after` and at or before `until`, oldest first, at most `max` of them (the
   * latest); `more` says that earlier ones were left out.
   */
  between(after: Date, until: Date, max: number = MAX_MISSED_TICKS): { ticks: Date[]; more: boolean } {
    if (until <= after) return { ticks: [], more: false };
    // previousRuns leaves out a tick exactly at its reference: `until` itself counts here.
    const latest = this.job.previousRuns(max + 1, new Date(until.getTime() + 1)).filter((t) => t > after);
    const more = latest.length > max;
    return { ticks: latest.slice(0, max).reverse(), more };
  }
}

/** Same schedule: the timer may keep its next tick. */
export const sameSchedule = (a: Pick<Schedule, 'cron' | 'timeZone'> | undefined, b: Pick<Schedule, 'cron' | 'timeZone'> | undefined) => a?.cron === b?.cron && a?.timeZone === b?.timeZone;

function cronOf(cron: string, timeZone: string): Cron {
  // paused and without a callback: croner computes dates only, the scheduler keeps its own timers.
  return new Cron(cron.trim(), { mode: '5-or-6-parts', timezone: timeZone, paused: true });
}

function isTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}
