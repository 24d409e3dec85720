/**
 * The runtime removes each container's own cgroup; the function's cgroup above it,
 * /skiff/<fn> in every hierarchy, stays for the function's next container. These remove it
 * once it is empty: for a deleted function, and for every function when the worker starts.
 * rmdir removes only an empty cgroup (no tasks, no children), so one still in use stays.
 */
import { readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Where the cgroup hierarchies are mounted: v2 right here (or at `unified`), v1 one per controller. */
export const CGROUP_ROOT = '/sys/fs/cgroup';
/** The first component of every function's cgroupsPath, /skiff/<fn>/<instance> (see bundle.ts). */
export const CGROUP_PARENT = 'skiff';

/** Removes /skiff/<fn> in every hierarchy. True when none is left (or there was none). */
export async function removeFunctionCgroups(fn: string, root = CGROUP_ROOT): Promise<boolean> {
  if (!fn || fn.includes('/') || fn === '.' || fn === '..') throw new Error(`not a function name: ${JSON.stringify(fn)}`);
  const removed = await Promise.all((await parents(root)).map((dir) => removeEmpty(join(dir, fn))));
  return removed.every(Boolean);
}

/** Removes every empty /skiff/<fn> in every hierarchy; returns how many it removed. */
export async function removeEmptyFunctionCgroups(root = CGROUP_ROOT): Promise<number> {
  let count = 0;
  for (const dir of await parents(root)) {
    for (const fn of await subdirectories(dir)) if (await removeEmpty(join(dir, fn))) count++;
  }
  return count;
}

/** <root>/skiff (v2) and <root>/<hierarchy>/skiff (v1 controllers, a hybrid's `unified`), where present. */
async function parents(root: string): Promise<string[]> {
  const hierarchies = [root, ...(await subdirectories(root)).map((d) => join(root, d))];
  const found = await Promise.all(hierarchies.map(async (h) => ((await subdirectories(h)).includes(CGROUP_PARENT) ? join(h, CGROUP_PARENT) : undefined)));
  return found.filter((d): d is string => d !== undefined);
}

/** Directories only: v1's `cpu` and `cpuacct` are symlinks to `cpu,cpuacct`, listed once. */
async function subdirectories(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

/** True when the directory is gone (removed now, or not there), false while it is in use. */
async function removeEmpty(dir: string): Promise<boolean> {
  try {
    await rmdir(dir);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return true;
    if (code === 'EBUSY' || code === 'ENOTEMPTY') return false;
    throw err; // not ours to remove (EACCES, EROFS…): trying again would not help
  }
}
