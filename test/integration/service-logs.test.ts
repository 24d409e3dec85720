import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { Platform, waitUntil, type Service } from '@skiff/testkit';

const MAX_BYTES = 16 * 1024;

/** The JSON lines of a log file (every one must parse: rotation never splits a line). */
const lines = (path: string): { msg: string }[] =>
  existsSync(path)
    ? readFileSync(path, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { msg: string })
    : [];
const notPlaced = (path: string) => lines(path).filter((l) => l.msg === 'invocation not placed').length;

/**
 * docs/security.md #28: a service with SKIFF_LOG_FILE writes its own log, rotated by size and
 * reopened on SIGHUP. The scheduler logs a warning for each invocation it cannot place, so
 * requests on skiff.invoke that are no invocation make it log, one line per reply.
 */
describe('service logs rotate', () => {
  let p: Platform;
  let nc: NatsConnection;
  let scheduler: Service;
  let log: string;
  const badInvocation = () => nc.request('skiff.invoke', new Uint8Array(0), { timeout: 5000 });

  beforeAll(async () => {
    p = await Platform.create();
    log = join(p.dataDir, 'logs', 'scheduler.log');
    scheduler = p.start('scheduler', { SKIFF_LOG_FILE: log, SKIFF_LOG_MAX_BYTES: String(MAX_BYTES), SKIFF_LOG_KEEP: '2' }, 'scheduler-stderr');
    nc = await p.nats.connect('gateway'); // sends invocations, as a gateway does
  });
  afterAll(async () => {
    await nc?.close();
    await p?.close();
  });

  it('rotates its log file by size, keeping SKIFF_LOG_KEEP files of whole lines', async () => {
    // logs/ did not exist: the service made it.
    await waitUntil(async () => lines(log).some((l) => l.msg === 'scheduler running'), 'the scheduler log');
    const sent = 100;
    for (let i = 0; i < sent; i++) await badInvocation();
    const files = [log, `${log}.1`, `${log}.2`];
    for (const f of files) expect(statSync(f).size, f).toBeLessThanOrEqual(MAX_BYTES);
    expect(existsSync(`${log}.3`)).toBe(false);
    // ~900 bytes a line: 100 lines are more than three files hold, so the oldest were dropped;
    // the rotated files hold lines too.
    const kept = files.reduce((n, f) => n + notPlaced(f), 0);
    expect(kept).toBeLessThan(sent);
    expect(notPlaced(`${log}.1`)).toBeGreaterThan(0);
    expect(notPlaced(`${log}.2`)).toBeGreaterThan(0);
    expect(notPlaced(log)).toBeGreaterThan(0);
  });

  it('reopens its log file on SIGHUP, after the file was moved away, and keeps running', async () => {
    renameSync(log, `${log}.moved`);
    const moved = notPlaced(`${log}.moved`);
    scheduler.child.kill('SIGHUP');
    // Lines go to the moved file until the signal is handled, then to a new file at the path.
    for (let i = 0; i < 50 && !existsSync(log); i++) await badInvocation();
    expect(existsSync(log), 'a new log file after SIGHUP').toBe(true);
    const before = notPlaced(`${log}.moved`);
    for (let i = 0; i < 5; i++) await badInvocation();
    expect(notPlaced(`${log}.moved`)).toBe(before);
    expect(before).toBeGreaterThanOrEqual(moved);
    expect(notPlaced(log)).toBeGreaterThanOrEqual(5);
    expect(scheduler.child.exitCode).toBeNull();
    expect(scheduler.child.signalCode).toBeNull();
  });
});
