import { describe, expect, it } from 'vitest';
import { MAX_MISSED_TICKS, Ticks, parseSchedule, scheduleProblem } from './schedule.js';

const at = (iso: string) => new Date(iso);
const iso = (dates: Date[]) => dates.map((d) => d.toISOString());

describe('schedules', () => {
  it('take 5 fields (minute first) or 6 (seconds first), in UTC by default, catchUp off', () => {
    expect(parseSchedule('*/15 * * * *')).toEqual({ cron: '*/15 * * * *', timeZone: 'UTC', catchUp: false });
    expect(new Ticks(parseSchedule('*/15 * * * *')).next(at('2026-03-01T10:07:30Z'))?.toISOString()).toBe('2026-03-01T10:15:00.000Z');
    const everySecond = new Ticks(parseSchedule('* * * * * *'));
    expect(everySecond.next(at('2026-03-01T10:07:30.400Z'))?.toISOString()).toBe('2026-03-01T10:07:31.000Z');
    expect(new Ticks(parseSchedule('30 0 9 * * *')).next(at('2026-03-01T10:00:00Z'))?.toISOString()).toBe('2026-03-02T09:00:30.000Z');
  });

  it('read the fields in the IANA time zone given, daylight saving time included', () => {
    const nine = new Ticks(parseSchedule({ cron: '0 9 * * *', timeZone: 'America/New_York', catchUp: true }));
    expect(nine.schedule).toEqual({ cron: '0 9 * * *', timeZone: 'America/New_York', catchUp: true });
    expect(nine.next(at('2026-01-10T00:00:00Z'))?.toISOString()).toBe('2026-01-10T14:00:00.000Z'); // EST, UTC-5
    expect(nine.next(at('2026-07-10T00:00:00Z'))?.toISOString()).toBe('2026-07-10T13:00:00.000Z'); // EDT, UTC-4
    expect(new Ticks(parseSchedule({ cron: '0 0 * * *', timeZone: 'Asia/Kolkata' })).next(at('2026-01-10T00:00:00Z'))?.toISOString()).toBe('2026-01-10T18:30:00.000Z');
  });

  it('list the ticks between two instants oldest first, the latest MAX_MISSED_TICKS of them at most', () => {
    const everyMinute = new Ticks(parseSchedule('* * * * *'));
    expect(iso(everyMinute.between(at('2026-03-01T10:00:00Z'), at('2026-03-01T10:03:10Z')).ticks)).toEqual(['2026-03-01T10:01:00.000Z', '2026-03-01T10:02:00.000Z', '2026-03-01T10:03:00.000Z']);
    expect(everyMinute.between(at('2026-03-01T10:00:00Z'), at('2026-03-01T10:00:59Z'))).toEqual({ ticks: [], more: false });
    const day = new Ticks(parseSchedule('* * * * * *')).between(at('2026-03-01T00:00:00Z'), at('2026-03-02T00:00:00Z'));
    expect(day.more).toBe(true);
    expect(day.ticks).toHaveLength(MAX_MISSED_TICKS);
    expect(day.ticks.at(-1)?.toISOString()).toBe('2026-03-02T00:00:00.000Z');
    expect(day.ticks[0]?.toISOString()).toBe(new Date(Date.parse('2026-03-02T00:00:00Z') - (MAX_MISSED_TICKS - 1) * 1000).toISOString());
  });

  it('refuse other field counts, nicknames, bad fields, dates that never come and unknown zones, naming the part', () => {
    expect(scheduleProblem('* * * *')).toMatchObject({ field: '', message: expect.stringMatching(/5 fields .* or 6/) });
    expect(scheduleProblem('0 0 0 * * * 2030')).toMatchObject({ field: '' });
    expect(scheduleProblem('@daily')).toMatchObject({ field: '' });
    expect(scheduleProblem('')).toMatchObject({ field: '' });
    expect(scheduleProblem('61 * * * *')).toMatchObject({ field: '', message: expect.stringContaining('minute') });
    expect(scheduleProblem({ cron: 'a b c d e' })).toMatchObject({ field: '.cron' });
    expect(scheduleProblem({ cron: '0 0 30 2 *' })).toMatchObject({ field: '.cron', message: expect.stringContaining('never') });
    expect(scheduleProblem({ cron: '* * * * *', timeZone: 'Mars/Olympus_Mons' })).toMatchObject({ field: '.timeZone' });
    expect(scheduleProblem({ cron: '* * * * *', timeZone: 'x'.repeat(65) })).toMatchObject({ field: '.timeZone' });
    expect(scheduleProblem(`${'1,'.repeat(200)}1 * * * *`)).toMatchObject({ field: '', message: expect.stringContaining('256') });
    expect(() => parseSchedule('* * *')).toThrow(/triggers\.schedule: /);
    expect(scheduleProblem({ cron: '0 9 * * 1-5', timeZone: 'Europe/Berlin' })).toBeUndefined();
  });
});
