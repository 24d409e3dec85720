import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Platform, REPO } from '@skiff/testkit';

/** Parses the inspect function's key=value lines. */
function parse(text: string): Record<string, string> {
  return Object.fromEntries(text.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]));
}

describe('what a function sees from inside its container', () => {
  let p: Platform;
  // A file at the top of the host's root: the same absolute path must not exist inside.
  const hostFile = `/skiff-isolation-${randomBytes(6).toString('hex')}`;
  let seen: Record<string, string>;

  beforeAll(async () => {
    writeFileSync(hostFile, 'host only');
    p = await Platform.create();
    await p.buildBase();
    await p.startAll();
    const deployed = await p.deploy('inspect', join(REPO, 'test/fixtures/functions/inspect'), ['/bin/sh', '/function/inspect.sh']);
    expect(deployed.status).toBe(201);
    const res = await p.api('POST', '/v1/functions/inspect/invoke', `${hostFile}\n`);
    expect(res.status).toBe(200);
    seen = parse(await res.text());
  });
  afterAll(async () => {
    rmSync(hostFile, { force: true });
    await p?.close();
  });

  it('runs as PID 1 of its own PID namespace', () => {
    expect(seen.pid).toBe('1');
    // The host has hundreds of processes; inside there are the shell and its children only.
    expect(Number(seen.processes)).toBeGreaterThan(0);
    expect(Number(seen.processes)).toBeLessThanOrEqual(4);
  });

  it('has its own hostname', () => {
    expect(seen.hostname).toBe('inspect');
  });

  it('has no network interface but loopback', () => {
    expect(seen.interfaces).toBe('lo');
  });

  it('cannot see a file created on the host outside its image', () => {
    expect(seen.probe).toBe('absent');
  });
});
