/**
 * What a worker that died (SIGKILL, a crash, the machine's OOM killer) left on its node, removed
 * by the next worker of the same node before it takes work: the containers it ran, their
 * cgroups, their bundles, and the image mounts under its work dir.
 *
 * Which containers were this node's is told by its bundles: each container's bundle
 * (`<work dir>/bundles/<instance>/config.json`) is written before the container's cgroup exists
 * and removed only after its runtime has exited, and it names the cgroup (`linux.cgroupsPath`).
 * Cgroups carry no node in their path (`/skiff/<fn>/<instance>`, `/skiff/@stem/<instance>`), and
 * other nodes on the same host use the same parent: anything no bundle of this node names is
 * left alone.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@skiff/service-kit';
import { mountsUnder, unmount } from '@skiff/image';
import { CGROUP_PARENT, CGROUP_ROOT } from './cgroups.js';

/** A container's processes get this long to be gone after SIGKILL before its cgroup is left in place. */
const KILL_WAIT_MS = 5000;
/** `<runtime> delete --force` gets this long per container. */
const DELETE_TIMEOUT_MS = 15_000;
/** Instance ids are the worker's own (hex); anything else in the bundles dir is not a bundle. */
const INSTANCE_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** The cgroups the worker gives containers: /skiff/<fn or @stem>/<instance>. */
const CONTAINER_CGROUP = new RegExp(`^/${CGROUP_PARENT}/[A-Za-z0-9@_.-]{1,128}/[A-Za-z0-9_-]{1,64}$`);

export interface LeftoverOptions {
  runtime: string;
  /** `<work dir>/bundles`. */
  bundlesDir: string;
  /** `<work dir>/images`: its image mounts are under `rootfs/`. */
  imagesDir: string;
  log: Logger;
  cgroupRoot?: string;
}

export interface LeftoversRemoved {
  /** Bundles found, one per container the dead worker had started. */
  containers: number;
  /** Cgroups that were still there. */
  cgroups: number;
  /** Mounts undone. */
  mounts: number;
}

/** Removes what a dead predecessor on this node left. Never throws: a failure is logged and start goes on. */
export async function removeLeftovers(o: LeftoverOptions): Promise<LeftoversRemoved> {
  const root = o.cgroupRoot ?? CGROUP_ROOT;
  const removed: LeftoversRemoved = { containers: 0, cgroups: 0, mounts: 0 };
  const ids = (await readdir(o.bundlesDir).catch(() => [] as string[])).filter((id) => INSTANCE_ID.test(id));
  for (const id of ids) {
    removed.containers++;
    const bundle = join(o.bundlesDir, id);
    const cgroupsPath = await cgroupOf(bundle);
    try {
      // The runtime kills the container's init and removes its cgroup and state, if it has any.
      await forceDelete(o.runtime, `skiff-${id}`);
      // A runtime killed before it wrote its state leaves the cgroup to us.
      if (cgroupsPath) removed.cgroups += await removeCgroup(root, cgroupsPath);
    } catch (err) {
      o.log.warn({ err, instance: id, cgroup: cgroupsPath }, 'cannot remove a container left from before');
    }
    await rm(bundle, { recursive: true, force: true }).catch(() => undefined);
  }
  for (const dir of [o.bundlesDir, join(o.imagesDir, 'rootfs')]) {
    for (const m of await mountsUnder(dir)) {
      try {
        await unmount(m);
        removed.mounts++;
      } catch (err) {
        o.log.warn({ err, mount: m }, 'cannot unmount a mount left from before');
      }
    }
  }
  await rm(o.bundlesDir, { recursive: true, force: true }).catch(() => undefined);
  if (removed.containers + removed.mounts > 0) o.log.info(removed, 'removed what the last worker of this node left');
  return removed;
}

/** The bundle's cgroupsPath when it is one the worker gives containers; undefined otherwise. */
async function cgroupOf(bundle: string): Promise<string | undefined> {
  try {
    const spec = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { linux?: { cgroupsPath?: unknown } };
    const path = spec.linux?.cgroupsPath;
    return typeof path === 'string' && CONTAINER_CGROUP.test(path) && !path.split('/').includes('..') ? path : undefined;
  } catch {
    return undefined; // no config.json yet: its container never started
  }
}

function forceDelete(runtime: string, containerId: string): Promise<void> {
  // Its status does not matter: nothing to delete is the usual case.
  return new Promise((resolve) => execFile(runtime, ['delete', '--force', containerId], { timeout: DELETE_TIMEOUT_MS }, () => resolve()));
}

/**
 * Kills what is left in the cgroup at `path` in every hierarchy (v2, or each v1 controller),
 * waits for it to be gone (bounded), and removes the directories. Returns how many were there.
 */
export async function removeCgroup(root: string, path: string): Promise<number> {
  let found = 0;
  for (const hierarchy of [root, ...(await subdirectories(root)).map((d) => join(root, d))]) {
    const dir = join(hierarchy, path);
    const tree = await cgroupTree(dir);
    if (tree.length === 0) continue;
    found++;
    await killAll(tree);
    for (const d of tree.reverse()) await rmdirWhenEmpty(d);
  }
  return found;
}

/** The cgroup and those below it, parents first; empty when it does not exist. */
async function cgroupTree(dir: string): Promise<string[]> {
  const children = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
  if (!children) return [];
  const out = [dir];
  for (const c of children) if (c.isDirectory()) out.push(...(await cgroupTree(join(dir, c.name))));
  return out;
}

async function killAll(tree: string[]): Promise<void> {
  // v2 (Linux 5.14+) kills a whole subtree at once; elsewhere each listed process is killed.
  // (r+: only where the file exists, never creating one.)
  if (await writeFile(join(tree[0]!, 'cgroup.kill'), '1', { flag: 'r+' }).then(() => true, () => false)) return;
  for (const dir of tree) {
    for (const pid of await procs(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
}

async function procs(dir: string): Promise<number[]> {
  const text = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
  return text.split('\n').filter(Boolean).map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

/** rmdir, retried while the killed processes exit; a cgroup that stays busy is left in place. */
async function rmdirWhenEmpty(dir: string): Promise<void> {
  for (const until = Date.now() + KILL_WAIT_MS; ; ) {
    try {
      return await rmdir(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if ((code !== 'EBUSY' && code !== 'ENOTEMPTY') || Date.now() >= until) throw err;
      await killAll([dir]);
      await sleep(50);
    }
  }
}

async function subdirectories(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}
