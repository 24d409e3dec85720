/**
 * A stem cell's cgroup limits, set anew for the function that adopts it: the same files, with
 * the same meaning, that skiff-launch writes for a container's `linux.resources` (see
 * services/launcher/README.md), for the resources a worker's runtime spec sets (memory and
 * memory+swap, CPU quota and period, pids). The stem cell's memory so far is charged to that
 * cgroup, so the function's limit counts it, as it would count a container started for it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CGROUP_ROOT } from '../cgroups.js';

/** The subset of OCI `linux.resources` a worker's runtime spec sets (bundle.ts). */
export interface Resources {
  memory: { limit: number; swap: number };
  cpu: { quota: number; period: number };
  pids: { limit: number };
}

export type CgroupLayout = 'v1' | 'v2';

/** v2 when /sys/fs/cgroup is the unified hierarchy, as the launcher decides it. */
export function cgroupLayout(root = CGROUP_ROOT): CgroupLayout {
  return existsSync(join(root, 'cgroup.controllers')) ? 'v2' : 'v1';
}

const write = (dir: string, file: string, value: string | number) => writeFileSync(join(dir, file), String(value));

/**
 * Writes the limits into the cgroup at `path` (the container's cgroupsPath). Throws (an
 * ErrnoException naming the file) when the kernel refuses one, e.g. a memory limit below what
 * the cgroup already uses (EBUSY): the caller then does not use the stem cell.
 */
export function applyLimits(path: string, r: Resources, root = CGROUP_ROOT, layout = cgroupLayout(root)): void {
  if (!path.startsWith('/') || path.split('/').includes('..')) throw new Error(`not a cgroup path: ${path}`);
  if (layout === 'v2') {
    const dir = join(root, path);
    write(dir, 'memory.max', r.memory.limit);
    write(dir, 'memory.swap.max', Math.max(0, r.memory.swap - r.memory.limit));
    write(dir, 'cpu.max', `${r.cpu.quota} ${r.cpu.period}`);
    write(dir, 'pids.max', r.pids.limit);
    return;
  }
  const memory = join(root, 'memory', path);
  // memory.memsw.limit_in_bytes may never be below memory.limit_in_bytes: raise it first when
  // the limit goes up, lower it last when the limit goes down.
  const current = Number(readFileSync(join(memory, 'memory.limit_in_bytes'), 'utf8'));
  const swapFile = existsSync(join(memory, 'memory.memsw.limit_in_bytes'));
  if (swapFile && r.memory.limit > current) write(memory, 'memory.memsw.limit_in_bytes', r.memory.swap);
  write(memory, 'memory.limit_in_bytes', r.memory.limit);
  if (swapFile && r.memory.limit <= current) write(memory, 'memory.memsw.limit_in_bytes', r.memory.swap);
  const cpu = join(root, 'cpu', path);
  write(cpu, 'cpu.cfs_period_us', r.cpu.period);
  write(cpu, 'cpu.cfs_quota_us', r.cpu.quota);
  write(join(root, 'pids', path), 'pids.max', r.pids.limit);
}
