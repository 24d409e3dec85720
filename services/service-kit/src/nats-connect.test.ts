import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { natsAuthFrom } from './nats-connect.js';

describe('natsAuthFrom', () => {
  it('reads a user and password, a token or a .creds file, and nothing when none is set', () => {
    expect(natsAuthFrom({})).toEqual({ kind: 'none' });
    expect(natsAuthFrom({ SKIFF_NATS_USER: 'u', SKIFF_NATS_PASSWORD: 'p' })).toEqual({ kind: 'user', user: 'u', password: 'p' });
    expect(natsAuthFrom({ SKIFF_NATS_TOKEN: 't' })).toEqual({ kind: 'token', token: 't' });
    const file = join(mkdtempSync(join(tmpdir(), 'skiff-creds-')), 'svc.creds');
    writeFileSync(file, '-----BEGIN NATS USER JWT-----\neyJ0\n------END NATS USER JWT------\n');
    expect(natsAuthFrom({ SKIFF_NATS_CREDS: file })).toMatchObject({ kind: 'creds', file });
  });

  it('refuses two ways at once, half a user, and a creds file it cannot read or that is not one, naming the variable', () => {
    expect(() => natsAuthFrom({ SKIFF_NATS_USER: 'u', SKIFF_NATS_PASSWORD: 'p', SKIFF_NATS_TOKEN: 't' })).toThrow(/only one of/);
    expect(() => natsAuthFrom({ SKIFF_NATS_USER: 'u' })).toThrow(/SKIFF_NATS_PASSWORD/);
    expect(() => natsAuthFrom({ SKIFF_NATS_CREDS: '/nonexistent/x.creds' })).toThrow(/SKIFF_NATS_CREDS: cannot read/);
    const file = join(mkdtempSync(join(tmpdir(), 'skiff-creds-')), 'not.creds');
    writeFileSync(file, 'hello');
    expect(() => natsAuthFrom({ SKIFF_NATS_CREDS: file })).toThrow(/not a NATS .creds file/);
  });
});
