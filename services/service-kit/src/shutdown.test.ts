import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { stopOnSignals } from './shutdown.js';

class FakeProcess extends EventEmitter {
  send: (() => void) | undefined = undefined;
  exits: number[] = [];
  exit(code: number): void {
    this.exits.push(code);
  }
}

const quiet = pino({ level: 'silent' });
const settled = () => new Promise((r) => setImmediate(r));

describe('stopOnSignals', () => {
  it('stops once when SIGINT and SIGTERM both arrive (Ctrl-C and the supervisor), then exits 0', async () => {
    const host = new FakeProcess();
    let stops = 0;
    let finish!: () => void;
    stopOnSignals(() => (stops++, new Promise<void>((r) => (finish = r))), quiet, host);
    host.emit('SIGINT');
    host.emit('SIGTERM');
    host.emit('SIGINT');
    expect(stops).toBe(1);
    finish();
    await settled();
    expect(host.exits).toEqual([0]);
  });

  it('exits 1 when the stop fails', async () => {
    const host = new FakeProcess();
    stopOnSignals(() => Promise.reject(new Error('broken')), quiet, host);
    host.emit('SIGTERM');
    await settled();
    expect(host.exits).toEqual([1]);
  });

  it('stops when the supervisor that holds its IPC channel is gone', async () => {
    const host = new FakeProcess();
    host.send = () => undefined;
    let stops = 0;
    stopOnSignals(async () => void stops++, quiet, host);
    host.emit('disconnect');
    await settled();
    expect(stops).toBe(1);
    expect(host.exits).toEqual([0]);
  });
});
