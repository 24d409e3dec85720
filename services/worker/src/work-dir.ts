/**
 * One worker per work dir. A starting worker removes what the last worker of its node left
 * (leftovers.ts): with a second worker of the same node id running, that would be the first
 * one's containers. So the work dir holds `worker.pid`, the pid and start time of the worker
 * that has it; a start finds it held by a live process and refuses.
 */
import { linkSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

interface Holder {
  pid: number;
  /** /proc/<pid>/stat field 22: with the pid, it names one process (pids are reused). */
  starttime: string;
}

export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined; // no such process
  }
}

function holderOf(file: string): Holder | undefined {
  try {
    const [pid, starttime] = readFileSync(file, 'utf8').trim().split(' ');
    return pid && starttime && /^\d+$/.test(pid) ? { pid: Number(pid), starttime } : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the work dir for this process, or throws naming the live worker that has it. */
export function claimWorkDir(workDir: string, nodeId: string, self: Holder = { pid: process.pid, starttime: startTimeOf(process.pid) ?? '0' }): void {
  // Traversable, not listable: a runtime that mounts the root from inside the container's user
  // namespace (runc) reaches the image under it as the container's uid.
  mkdirSync(workDir, { recursive: true, mode: 0o711 });
  const file = join(workDir, 'worker.pid');
  const mine = join(workDir, `worker.pid.${self.pid}`);
  writeFileSync(mine, `${self.pid} ${self.starttime}\n`, { mode: 0o600 });
  try {
    // link() fails when the file exists: of two workers starting at once, one gets it.
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return linkSync(mine, file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const held = holderOf(file);
      if (held && held.pid !== self.pid && startTimeOf(held.pid) === held.starttime) {
        throw new Error(`another worker (pid ${held.pid}) runs for node ${nodeId} with work dir ${workDir}; give this one another SKIFF_NODE_ID`);
      }
      unlinkSync(file); // left by a worker that is gone
    }
    throw new Error(`cannot take ${file}: workers keep starting for node ${nodeId}`);
  } finally {
    rmSync(mine, { force: true });
  }
}
