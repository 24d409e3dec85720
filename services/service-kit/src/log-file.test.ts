import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RotatingLogFile, logFileOptions } from './log-file.js';

describe('RotatingLogFile', () => {
  const line = (i: number) => `${JSON.stringify({ i, pad: 'x'.repeat(80) })}\n`;

  it('rotates before a write would pass maxBytes, keeping whole lines in `keep` files', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'skiff-log-')), 'logs', 'svc.log');
    const f = new RotatingLogFile({ path, maxBytes: 1024, keep: 2 });
    for (let i = 0; i < 100; i++) f.write(line(i));
    f.close();
    for (const p of [path, `${path}.1`, `${path}.2`]) expect(statSync(p).size).toBeLessThanOrEqual(1024);
    expect(existsSync(`${path}.3`)).toBe(false);
    const all = [`${path}.2`, `${path}.1`, path].flatMap((p) => readFileSync(p, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { i: number }).i));
    // the newest lines, in order, none split
    expect(all).toEqual(Array.from({ length: all.length }, (_, k) => 100 - all.length + k));
  });

  it('writes to a new file at its path once reopened after the file was moved', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'skiff-log-')), 'svc.log');
    const f = new RotatingLogFile({ path, maxBytes: 1 << 20, keep: 1 });
    f.write('before\n');
    renameSync(path, `${path}.old`);
    f.write('still the old file\n');
    f.reopen();
    f.write('after\n');
    f.close();
    expect(readFileSync(`${path}.old`, 'utf8')).toBe('before\nstill the old file\n');
    expect(readFileSync(path, 'utf8')).toBe('after\n');
  });

  it('reads its settings from the environment and names a wrong one', () => {
    expect(logFileOptions({})).toBeUndefined();
    expect(logFileOptions({ SKIFF_LOG_FILE: '/x.log' })).toEqual({ path: '/x.log', maxBytes: 64 * 1024 * 1024, keep: 5 });
    expect(() => logFileOptions({ SKIFF_LOG_FILE: '/x.log', SKIFF_LOG_MAX_BYTES: '10' })).toThrow(/SKIFF_LOG_MAX_BYTES must be an integer from 1024/);
    expect(() => logFileOptions({ SKIFF_LOG_FILE: '/x.log', SKIFF_LOG_KEEP: '0' })).toThrow(/SKIFF_LOG_KEEP/);
  });
});
