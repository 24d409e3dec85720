import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SUBJECTS } from '@skiff/contracts';
import { invocationId } from '@skiff/events';
import { LATE_TICK_GRACE_MS } from '@skiff/scheduler';
import { Platform, waitUntil, type Service } from '@skiff/testkit';

/**
 * Schedules end to end: a real nats-server, two schedulers, a worker and containers, per-second
 * schedules. Every wait is for a recorded outcome or a log line; the one wait for time is the
 * outage that makes ticks missed.
 */

interface Record_ {
  id: string;
  status: string;
  idempotencyKey?: string;
  acceptedAt: string;
  attempts: unknown[];
  result?: { body?: string };
  error?: { code: string; detail: string };
}

const EVERY_SECOND = '* * * * * *';
/** One instance that lives through the outage below, so its count of calls is the count of runs. */
const ONE_INSTANCE = { maxInstances: 1, concurrency: 1, idleTimeoutMs: 600_000 };
/** Listing records reads each from JetStream: checks that list them are spaced out on the shared machine. */
const spaced = (check: () => Promise<boolean>) => async () => (await new Promise((r) => setTimeout(r, 250)), check());
const tickOf = (r: Record_) => r.idempotencyKey!.slice('schedule:'.length);
const resultOf = <T>(r: Record_) => JSON.parse(Buffer.from(r.result?.body ?? '', 'base64').toString()) as T;

/**
 * A node function that counts its calls, and its runs of each tick, and returns what it saw of
 * the tick. A tick run twice shows `runs: 2` in its record (the later result is kept).
 */
function counter(): string {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-schedule-fn-'));
  writeFileSync(
    join(dir, 'index.mjs'),
    'let calls = 0;\nconst runs = new Map();\nexport default async (event, context) => {\n  const tick = context.event.headers["Skiff-Schedule-Tick"][0];\n  runs.set(tick, (runs.get(tick) ?? 0) + 1);\n  return { calls: ++calls, runs: runs.get(tick), key: context.idempotencyKey, subject: context.event.subject, tick, catchUp: context.event.headers["Skiff-Schedule-Catch-Up"]?.[0] ?? null, body: event };\n};\n',
  );
  return dir;
}

describe('schedules', () => {
  let p: Platform;
  let schedulers: Service[] = [];
  const names = () => schedulers.map((s) => s.name);

  const startSchedulers = (...which: string[]) => {
    schedulers = which.map((name) => p.start('scheduler', { SKIFF_LOG_LEVEL: 'debug' }, name));
  };
  const logLines = (name: string) =>
    readFileSync(join(p.dataDir, `${name}.log`), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  /** Every running scheduler's last word on the function's schedule matches `want`. */
  const schedulersSay = (fn: string, want: string) =>
    waitUntil(async () => names().every((n) => logLines(n).filter((l) => (l.msg === 'schedule' || l.msg === 'schedule removed') && l.fn === fn).at(-1)?.msg === want), `every scheduler to log "${want}" for ${fn}`, 30_000);

  const records = async (fn: string): Promise<Record_[]> => {
    const all: Record_[] = [];
    for (let cursor: string | undefined = '0'; cursor !== undefined; ) {
      const res = await p.api('GET', `/v1/functions/${fn}/invocations?limit=100&cursor=${cursor}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as { invocations: Record_[]; next?: string };
      all.push(...page.invocations);
      cursor = page.next;
    }
    return all;
  };
  const succeeded = async (fn: string) => (await records(fn)).filter((r) => r.status === 'succeeded');
  const waitForSucceeded = (fn: string, n: number) => waitUntil(spaced(async () => (await succeeded(fn)).length >= n), `${n} ticks of ${fn} to succeed`, 90_000);

  /** The ticks of the records, sorted; each is checked to be a whole second after the one before. */
  const consecutiveSeconds = (rs: Record_[]) => {
    const ticks = rs.map(tickOf).sort();
    ticks.forEach((t, i) => i > 0 && expect(Date.parse(t) - Date.parse(ticks[i - 1]!), `${ticks[i - 1]} → ${t}`).toBe(1000));
    return ticks;
  };

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.buildNodeRuntime();
    startSchedulers('scheduler-a', 'scheduler-b');
    await p.startGateway();
    p.start('worker', { SKIFF_NODE_ID: 'node-a' }, 'worker-node-a');
    await p.waitForNodes(['node-a']);
  }, 180_000);
  afterAll(async () => p?.close());

  it('fires once per tick with two schedulers running: one invocation per tick, the function run once each', async () => {
    expect((await p.deployNode('ticker', counter(), { ...ONE_INSTANCE, triggers: { schedule: EVERY_SECOND } })).status).toBe(201);
    await schedulersSay('ticker', 'schedule');
    await waitForSucceeded('ticker', 10);
    const all = await records('ticker');
    // Each tick once: ids and keys unique, the id the one the function and tick decide, no second missing.
    expect(new Set(all.map((r) => r.id)).size).toBe(all.length);
    for (const r of all) expect(r.id).toBe(invocationId('ticker', r.idempotencyKey!));
    consecutiveSeconds(all);
    expect(all.every((r) => ['queued', 'running', 'succeeded'].includes(r.status))).toBe(true);
    // The function ran once per tick: one instance counted 1..n over the n succeeded ticks, one attempt each.
    const done = all.filter((r) => r.status === 'succeeded');
    const calls = done.map((r) => resultOf<{ calls: number }>(r).calls).sort((a, b) => a - b);
    expect(calls).toEqual(done.map((_, i) => i + 1));
    for (const r of done) {
      expect(r.attempts).toHaveLength(1);
      const out = resultOf<{ key: string; subject: string; tick: string; body: { tick: string; cron: string; timeZone: string } }>(r);
      expect(out).toMatchObject({ key: r.idempotencyKey, subject: SUBJECTS.scheduleEvent('ticker'), tick: tickOf(r), body: { tick: tickOf(r), cron: EVERY_SECOND, timeZone: 'UTC' } });
    }
    // Both schedulers fired the ticks; JetStream kept one copy of each (the other is a duplicate).
    const fired = (name: string) => new Map(logLines(name).filter((l) => l.msg === 'tick' && l.fn === 'ticker').map((l) => [l.id as string, l.duplicate as boolean]));
    const [a, b] = [fired('scheduler-a'), fired('scheduler-b')];
    const both = done.filter((r) => a.has(r.id) && b.has(r.id));
    expect(both.length).toBeGreaterThan(5);
    for (const r of both) expect([a.get(r.id), b.get(r.id)].sort()).toEqual([false, true]);
  });

  it('a tick missed while no scheduler ran is recorded skipped and not run (catchUp off), or run late (catchUp on)', async () => {
    expect((await p.deployNode('tick-off', counter(), { ...ONE_INSTANCE, triggers: { schedule: { cron: EVERY_SECOND } } })).status).toBe(201);
    expect((await p.deployNode('tick-on', counter(), { ...ONE_INSTANCE, triggers: { schedule: { cron: EVERY_SECOND, timeZone: 'Europe/Berlin', catchUp: true } } })).status).toBe(201);
    await schedulersSay('tick-off', 'schedule');
    await schedulersSay('tick-on', 'schedule');
    await waitForSucceeded('tick-off', 2);
    await waitForSucceeded('tick-on', 2);

    // No scheduler for a while: ticks beyond the grace a starting scheduler fires late are missed.
    const stoppedAt = Date.now(); // the last tick fired before is at most a second older
    await Promise.all(schedulers.map((s) => s.stop()));
    await new Promise((r) => setTimeout(r, LATE_TICK_GRACE_MS + 5000));
    const restartedAt = Date.now();
    startSchedulers('scheduler-c', 'scheduler-d');
    await p.waitForNodes(['node-a']);
    await schedulersSay('tick-off', 'schedule');
    await schedulersSay('tick-on', 'schedule');

    // Every tick up to the restart has its outcome: none is left out, none is there twice.
    const settled = async (fn: string) => {
      const upToRestart = (await records(fn)).filter((r) => Date.parse(tickOf(r)) <= restartedAt);
      return upToRestart.every((r) => r.status === 'succeeded' || r.status === 'skipped') ? upToRestart : undefined;
    };
    const upToRestart = async (fn: string) => {
      let rs: Record_[] = [];
      const last = () => Math.max(...rs.map((r) => Date.parse(tickOf(r))));
      await waitUntil(spaced(async () => (rs = (await settled(fn)) ?? []).length > 0 && last() > restartedAt - 1000), `the ticks of ${fn} up to the restart`, 60_000);
      consecutiveSeconds(rs);
      return rs;
    };
    const off = await upToRestart('tick-off');
    const on = await upToRestart('tick-on');

    // catchUp off: the ticks due in the outage (but the last few, fired late) are skipped, SKIFF_TICK_MISSED, never run.
    const skipped = off.filter((r) => r.status === 'skipped');
    expect(skipped.length).toBeGreaterThanOrEqual(3);
    for (const r of skipped) {
      expect(r.error?.code).toBe('SKIFF_TICK_MISSED');
      expect(r.attempts).toEqual([]);
      expect(Date.parse(tickOf(r))).toBeGreaterThan(stoppedAt - 1000);
      expect(Date.parse(tickOf(r))).toBeLessThanOrEqual(restartedAt);
    }
    // Each tick that ran, ran once. (Not its count of calls: ticks after the restart run among
    // the late ones, in no set order.)
    const offDone = off.filter((r) => r.status === 'succeeded');
    expect(offDone.length).toBeGreaterThan(0);
    expect(offDone.map((r) => resultOf<{ runs: number }>(r).runs)).toEqual(offDone.map(() => 1));
    // Reported in the new schedulers' logs: each by the one scheduler whose record JetStream took.
    const reported = (fn: string) => names().flatMap((n) => logLines(n).filter((l) => typeof l.msg === 'string' && l.msg.startsWith('scheduled tick missed') && l.fn === fn).map((l) => l.id as string));
    expect(new Set(reported('tick-off'))).toEqual(new Set(skipped.map((r) => r.id)));

    // catchUp on: nothing skipped; the missed ticks ran, late, and the function knew it.
    expect(on.filter((r) => r.status !== 'succeeded')).toEqual([]);
    const late = on.filter((r) => resultOf<{ catchUp: string | null }>(r).catchUp === 'true');
    expect(late.length).toBeGreaterThanOrEqual(3);
    expect(new Set(reported('tick-on'))).toEqual(new Set(late.map((r) => r.id)));
    for (const r of late) expect(Date.parse(r.acceptedAt)).toBeGreaterThanOrEqual(restartedAt);
    expect(on.map((r) => resultOf<{ runs: number }>(r).runs)).toEqual(on.map(() => 1));
  }, 240_000);

  it('refuses schedules that are not 5 or 6 fields, do not parse, never fire, or name an unknown zone, naming the field', async () => {
    const cases: [unknown, string][] = [
      ['* * * *', 'body.triggers.schedule'],
      ['0 0 0 * * * 2030', 'body.triggers.schedule'],
      ['@daily', 'body.triggers.schedule'],
      ['61 * * * *', 'body.triggers.schedule'],
      [{ cron: 'every minute' }, 'body.triggers.schedule.cron'],
      [{ cron: '0 0 30 2 *' }, 'body.triggers.schedule.cron'],
      [{ cron: '* * * * *', timeZone: 'Mars/Olympus_Mons' }, 'body.triggers.schedule.timeZone'],
      [{ cron: '* * * * *', catchup: true }, 'body.triggers.schedule'],
      [{ timeZone: 'UTC' }, 'body.triggers.schedule'],
      [42, 'body.triggers.schedule'],
    ];
    for (const [schedule, field] of cases) {
      const res = await p.api('PUT', '/v1/functions/bad-schedule', { image: 'busybox:latest', triggers: { schedule } });
      const problem = (await res.json()) as { code: string; errors?: { field: string }[] };
      expect(res.status, JSON.stringify(schedule)).toBe(400);
      expect(problem.code).toBe('SKIFF_VALIDATION_FAILED');
      expect(problem.errors?.map((e) => e.field), JSON.stringify(schedule)).toContain(field);
    }
    expect((await p.api('GET', '/v1/functions/bad-schedule')).status).toBe(404);
  });

  it('stops firing as soon as the function is deleted', async () => {
    await p.api('DELETE', '/v1/functions/ticker').then((res) => expect(res.status).toBe(204));
    await schedulersSay('ticker', 'schedule removed');
    const removedAt = Math.max(...names().map((n) => logLines(n).filter((l) => l.msg === 'schedule removed' && l.fn === 'ticker').at(-1)!.time as number));
    // Another schedule as the clock: three more of its ticks ran after the removal.
    const clock = (await succeeded('tick-on')).length;
    await waitForSucceeded('tick-on', clock + 3);
    const after = (await records('ticker')).filter((r) => Date.parse(tickOf(r)) > removedAt);
    expect(after).toEqual([]);
  });
});
