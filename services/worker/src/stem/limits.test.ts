import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyLimits, cgroupLayout } from './limits.js';

const MIB = 1024 * 1024;
const limits = { memory: { limit: 64 * MIB, swap: 64 * MIB }, cpu: { quota: 50_000, period: 100_000 }, pids: { limit: 20 } };

// Plain files shaped like the cgroup mounts, recording the order of memory writes on v1.
describe('a stem cell cgroup given its function limits', () => {
  let root: string;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'skiff-limits-'))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));
  const read = (...p: string[]) => readFileSync(join(root, ...p), 'utf8');

  it('v1: writes memory, memory+swap, CPU quota and period and pids in their hierarchies', () => {
    for (const h of ['memory', 'cpu', 'pids']) mkdirSync(join(root, h, 'skiff', '@stem', 'x'), { recursive: true });
    writeFileSync(join(root, 'memory/skiff/@stem/x/memory.limit_in_bytes'), String(128 * MIB));
    writeFileSync(join(root, 'memory/skiff/@stem/x/memory.memsw.limit_in_bytes'), String(128 * MIB));
    expect(cgroupLayout(root)).toBe('v1');
    applyLimits('/skiff/@stem/x', limits, root);
    expect(read('memory/skiff/@stem/x/memory.limit_in_bytes')).toBe(String(64 * MIB));
    expect(read('memory/skiff/@stem/x/memory.memsw.limit_in_bytes')).toBe(String(64 * MIB));
    expect(read('cpu/skiff/@stem/x/cpu.cfs_quota_us')).toBe('50000');
    expect(read('cpu/skiff/@stem/x/cpu.cfs_period_us')).toBe('100000');
    expect(read('pids/skiff/@stem/x/pids.max')).toBe('20');
  });

  it('v2: memory.max, no swap beyond memory, cpu.max and pids.max in the one hierarchy', () => {
    writeFileSync(join(root, 'cgroup.controllers'), 'cpu memory pids\n');
    mkdirSync(join(root, 'skiff', '@stem', 'x'), { recursive: true });
    expect(cgroupLayout(root)).toBe('v2');
    applyLimits('/skiff/@stem/x', limits, root);
    expect(read('skiff/@stem/x/memory.max')).toBe(String(64 * MIB));
    expect(read('skiff/@stem/x/memory.swap.max')).toBe('0');
    expect(read('skiff/@stem/x/cpu.max')).toBe('50000 100000');
    expect(read('skiff/@stem/x/pids.max')).toBe('20');
  });

  it('refuses a path that could leave the hierarchy', () => {
    expect(() => applyLimits('/skiff/../x', limits, root, 'v2')).toThrow(/not a cgroup path/);
    expect(() => applyLimits('skiff/x', limits, root, 'v2')).toThrow(/not a cgroup path/);
  });
});
