import { existsSync, readFileSync, readdirSync, statfsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where a container's cgroup is on this host, found the way skiff-launch finds it: by the
 * filesystem at /sys/fs/cgroup. cgroup2 there is the unified layout (v2), one directory per
 * cgroup; anything else (a tmpfs of v1 controllers, maybe with an empty v2 at `unified`) is v1,
 * one directory per controller.
 */
export const CGROUP_ROOT = '/sys/fs/cgroup';
const CGROUP2_SUPER_MAGIC = 0x63677270;

export type CgroupLayout = 'v1' | 'v2';
export type Controller = 'memory' | 'pids' | 'cpu';

export function cgroupLayout(): CgroupLayout {
  return statfsSync(CGROUP_ROOT).type === CGROUP2_SUPER_MAGIC ? 'v2' : 'v1';
}

/** The directory holding `controller`'s files of the cgroup at `path` (a cgroupsPath). */
export function cgroupDir(path: string, controller: Controller): string {
  return cgroupLayout() === 'v2' ? join(CGROUP_ROOT, path) : join(CGROUP_ROOT, controller, path);
}

/** Every directory of the cgroup at `path` for memory, pids and cpu limits: one per v1 controller, or the one v2 directory. */
export function cgroupDirs(path: string): string[] {
  return cgroupLayout() === 'v2' ? [join(CGROUP_ROOT, path)] : (['memory', 'pids', 'cpu'] as const).map((c) => join(CGROUP_ROOT, c, path));
}

/** Those of `cgroupDirs(path)` that exist now. */
export function existingCgroupDirs(path: string): string[] {
  return cgroupDirs(path).filter((d) => existsSync(d));
}

/** The limits as an OCI config states them (memory.swap is memory plus swap), 'missing' for a file that is not there. */
export interface CgroupLimits {
  memory: string;
  memorySwap: string;
  cpuQuota: string;
  cpuPeriod: string;
  pids: string;
}

function read(dir: string, file: string): string {
  try {
    return readFileSync(join(dir, file), 'utf8').trim();
  } catch {
    return 'missing';
  }
}

/** The limits the cgroup at `path` has, read from the files of this host's layout. */
export function cgroupLimits(path: string): CgroupLimits {
  const file = (controller: Controller, name: string) => read(cgroupDir(path, controller), name);
  if (cgroupLayout() === 'v1') {
    return {
      memory: file('memory', 'memory.limit_in_bytes'),
      memorySwap: file('memory', 'memory.memsw.limit_in_bytes'),
      cpuQuota: file('cpu', 'cpu.cfs_quota_us'),
      cpuPeriod: file('cpu', 'cpu.cfs_period_us'),
      pids: file('pids', 'pids.max'),
    };
  }
  const memory = file('memory', 'memory.max');
  const swap = file('memory', 'memory.swap.max');
  const [cpuQuota = 'missing', cpuPeriod = 'missing'] = file('cpu', 'cpu.max').split(' ');
  const numbers = /^\d+$/.test(memory) && /^\d+$/.test(swap);
  return { memory, memorySwap: numbers ? String(Number(memory) + Number(swap)) : swap, cpuQuota, cpuPeriod, pids: file('pids', 'pids.max') };
}

/** A value of a flat keyed cgroup file ("key N" lines, such as cpu.stat), or undefined. */
export function cgroupStat(path: string, controller: Controller, file: string, key: string): number | undefined {
  const line = read(cgroupDir(path, controller), file).split('\n').find((l) => l.startsWith(`${key} `));
  return line === undefined ? undefined : Number(line.slice(key.length + 1));
}

/**
 * The lines of /proc/<pid>/cgroup that name a container's own cgroup, as a `grep -E` pattern,
 * and how many there are: its memory and pids hierarchies on v1, the one unified line on v2.
 */
export function ownCgroupLines(): { pattern: string; count: number } {
  return cgroupLayout() === 'v2' ? { pattern: '^0::', count: 1 } : { pattern: ':(memory|pids):', count: 2 };
}

/** Host pids of the processes in a container cgroup of function `fn` (/skiff/<fn>/<instance>, as the worker names them). */
export function functionProcesses(fn: string): string[] {
  return readdirSync('/proc').filter((pid) => {
    if (!/^\d+$/.test(pid)) return false;
    try {
      return readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(`/skiff/${fn}/`);
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** Ends the containers of `fn` a killed worker left running (their launcher went with it). */
export function killFunctionProcesses(fn: string): void {
  for (const pid of functionProcesses(fn)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}
