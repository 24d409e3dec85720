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
