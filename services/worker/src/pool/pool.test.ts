import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '@skiff/contracts';
import { type Logger } from '@skiff/service-kit';
import type { ExitInfo, StreamInstance } from './instance.js';
import { FunctionPool } from './pool.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet } as unknown as Logger;

/** Instances that are ready when told and exit when told, with no process behind them. */
function fakes() {
  const launches: { finish: () => void }[] = [];
  const exits: ((e: ExitInfo) => void)[] = [];
  let n = 0;
  const launch = () =>
    new Promise<StreamInstance>((resolve) => {
      const inst = { id: `i${n++}`, state: 'starting', inflight: 0, lastUsedAt: 0, stopped: false, ready: async () => {}, kill() {}, stop: async () => ((inst.stopped = true), { code: 0, signal: null, stderr: '' }) };
      Object.assign(inst, { exited: new Promise<ExitInfo>((r) => exits.push(r)) });
      launches.push({ finish: () => resolve(inst as unknown as StreamInstance) });
    });
  return { launch, launches, exits };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('FunctionPool minimum of instances', () => {
  it('starts minInstances once, however often it is asked, and replaces one that exits', async () => {
    const f = fakes();
    const pool = new FunctionPool('f', 1, { ...DEFAULT_SETTINGS, minInstances: 2 }, { launch: f.launch, room: () => 10, maxWaiting: 10, stopGraceMs: 0, log: quiet });
    expect(pool.scale()).toBe(2);
    // Asked again while the containers are still being made: those count.
    expect(pool.scale()).toBe(0);
    expect(pool.present).toBe(2);
    for (const l of f.launches) l.finish();
    await settle();
    expect(pool.idle).toBe(2);
    expect(pool.scale()).toBe(0);
    expect(f.launches).toHaveLength(2);
    f.exits[0]!({ code: 1, signal: null, stderr: '' });
    await settle();
    expect(pool.present).toBe(1);
    expect(pool.scale()).toBe(1);
    expect(f.launches).toHaveLength(3);
  });
});

describe('FunctionPool draining', () => {
  it('stops an instance whose start ends after the pool began draining (version replaced, function deleted)', async () => {
    const f = fakes();
    const pool = new FunctionPool('f', 1, { ...DEFAULT_SETTINGS, minInstances: 1 }, { launch: f.launch, room: () => 10, maxWaiting: 10, stopGraceMs: 0, log: quiet });
    expect(pool.scale()).toBe(1);
    void pool.drain();
    f.launches[0]!.finish();
    await settle();
    expect(pool.views().map((v) => v.state)).toEqual(['draining']);
    expect(pool.idle).toBe(0);
  });
});
