import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

describe('createLogger', () => {
  it('writes JSON lines with credentials replaced, at the top level and one level down', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'skiff-log-')), 'service.log');
    const log = createLogger('unit', 'info', { SKIFF_LOG_FILE: file });
    const secret = 'sekrit-0123456789';
    log.info({ authorization: `Bearer ${secret}`, token: secret, password: secret, pass: secret, secret }, 'top level');
    log.info({ nats: { pass: secret, password: secret, token: secret }, req: { headers: { authorization: `Bearer ${secret}` } }, headers: { cookie: secret } }, 'nested');
    log.info({ callId: 'call-1', traceId: '0af7651916cd43dd8448eb211c80319c' }, 'kept');
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(secret);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ name: 'unit', msg: 'top level', authorization: '[redacted]', token: '[redacted]', password: '[redacted]', pass: '[redacted]', secret: '[redacted]' });
    expect(lines[1]).toMatchObject({ nats: { pass: '[redacted]', password: '[redacted]', token: '[redacted]' }, req: { headers: { authorization: '[redacted]' } }, headers: { cookie: '[redacted]' } });
    expect(lines[2]).toMatchObject({ callId: 'call-1', traceId: '0af7651916cd43dd8448eb211c80319c' });
  });
});
