import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rotatingLines } from './append.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** docs/security.md #28: nats-server's output, rotated as the services' logs are. */
describe('rotatingLines', () => {
  it('rotates by size in whole lines, however the output is cut into chunks, keeping `keep` old files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-lines-'));
    dirs.push(dir);
    const path = join(dir, 'nats-server.log');
    const out = rotatingLines({ path, maxBytes: 1024, keep: 2 });
    const lines = Array.from({ length: 200 }, (_, i) => `[1] 2026/12/02 23:00:00.000000 [INF] line ${i} ${'x'.repeat(i % 40)}\n`);
    const text = lines.join('');
    // Chunks of 7 bytes: nearly every line arrives in pieces.
    for (let i = 0; i < text.length; i += 7) await new Promise<void>((resolve, reject) => out.write(text.slice(i, i + 7), (err) => (err ? reject(err) : resolve())));
    expect(readdirSync(dir).sort()).toEqual(['nats-server.log', 'nats-server.log.1', 'nats-server.log.2']);
    const older = [readFileSync(`${path}.2`, 'utf8'), readFileSync(`${path}.1`, 'utf8'), readFileSync(path, 'utf8')];
    for (const f of older) {
      expect(Buffer.byteLength(f)).toBeLessThanOrEqual(1024);
      expect(f.endsWith('\n')).toBe(true);
    }
    // The newest files hold the last lines, each whole, in order.
    expect(text.endsWith(older.join(''))).toBe(true);
    expect(older.join('').split('\n').slice(0, -1).every((l) => /^\[1\] .* line \d+ x*$/.test(l))).toBe(true);
  });

  it('rotates between the lines of one chunk too: a program that prints its whole start-up at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-lines-'));
    dirs.push(dir);
    const path = join(dir, 'nats-server.log');
    const out = rotatingLines({ path, maxBytes: 1024, keep: 2 });
    const text = Array.from({ length: 30 }, (_, i) => `[1] 2026/12/03 06:00:00.000000 [INF] start-up line ${i}\n`).join(''); // ~1.7 KB
    await new Promise<void>((resolve, reject) => out.write(text, (err) => (err ? reject(err) : resolve())));
    expect(readdirSync(dir).sort()).toEqual(['nats-server.log', 'nats-server.log.1']);
    for (const f of [`${path}.1`, path]) expect(readFileSync(f).length).toBeLessThanOrEqual(1024);
    expect(readFileSync(`${path}.1`, 'utf8') + readFileSync(path, 'utf8')).toBe(text);
  });
});
