import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { claimWorkDir, startTimeOf } from './work-dir.js';

describe('claimWorkDir', () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'skiff-workdir-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('refuses a work dir a live worker has: it would remove that worker\'s containers', () => {
    const d = dir();
    // The test process stands for the worker that runs.
    writeFileSync(join(d, 'worker.pid'), `${process.pid} ${startTimeOf(process.pid)}\n`);
    expect(() => claimWorkDir(d, 'node-a', { pid: process.pid + 1, starttime: '1' })).toThrow(/another worker \(pid \d+\) runs for node node-a/);
    expect(readFileSync(join(d, 'worker.pid'), 'utf8')).toBe(`${process.pid} ${startTimeOf(process.pid)}\n`);
  });

  it('takes a work dir whose worker is gone, also when its pid has been given to another process', () => {
    const d = dir();
    const gone = spawnSync('true').pid!;
    writeFileSync(join(d, 'worker.pid'), `${gone} 12345\n`);
    claimWorkDir(d, 'node-a', { pid: 4242, starttime: '99' });
    expect(readFileSync(join(d, 'worker.pid'), 'utf8')).toBe('4242 99\n');
    // A live process, but not the one that wrote the file (another start time): taken too.
    writeFileSync(join(d, 'worker.pid'), `${process.pid} 1\n`);
    claimWorkDir(d, 'node-a', { pid: 4243, starttime: '98' });
    expect(readFileSync(join(d, 'worker.pid'), 'utf8')).toBe('4243 98\n');
  });
});
