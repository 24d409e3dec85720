import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

describe('gateway config', () => {
  it('has defaults for everything', () => {
    const c = loadConfig({}, '/srv');
    expect(c).toMatchObject({ port: 8080, dataDir: '/srv/.skiff', storeDir: '/srv/.skiff/store', natsUrl: 'nats://127.0.0.1:4222', adminToken: undefined });
    expect(c.minInstancesCheckMs).toBe(5000);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('names the variable that is wrong', () => {
    expect(() => loadConfig({ SKIFF_PORT: 'http' })).toThrow(/SKIFF_PORT/);
    expect(() => loadConfig({ SKIFF_ADMIN_TOKEN: 'short' })).toThrow(/SKIFF_ADMIN_TOKEN/);
    expect(() => loadConfig({ SKIFF_MIN_INSTANCES_CHECK_MS: '10' })).toThrow(/SKIFF_MIN_INSTANCES_CHECK_MS/);
  });
});

describe('gateway connection limits', () => {
  it('default to timeouts in seconds and 256 connections per address', () => {
    const c = loadConfig({}, '/srv', 20_000);
    expect(c).toMatchObject({ headersTimeoutMs: 10_000, bodyTimeoutMs: 60_000, idleTimeoutMs: 30_000, maxConnectionsPerAddress: 256, maxConnections: 8192 });
  });

  it('keep all connections below the open-file limit, each with room for a second file', () => {
    expect(loadConfig({}, '/srv', 2000).maxConnections).toBe(968);
    expect(loadConfig({}, '/srv', 1024).maxConnections).toBe(480);
    expect(() => loadConfig({ SKIFF_MAX_CONNECTIONS: '1000' }, '/srv', 2000)).toThrow(/SKIFF_MAX_CONNECTIONS must be an integer from 1 to 968 \(the open-file limit is 2000\)/);
    expect(loadConfig({ SKIFF_MAX_CONNECTIONS: '900' }, '/srv', 2000).maxConnections).toBe(900);
  });
});
