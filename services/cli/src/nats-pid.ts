import { readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * `<data dir>/nats/nats-server.pid`: the nats-server `skiff up` started, and that `skiff up`,
 * each as a pid and its start time (the two name one process: pids are reused). With it the next
 * `skiff up` finds a nats-server an earlier one left running (it was killed with SIGKILL where
 * the parent-death signal is not to be had) and stops it, after checking it is that very process,
 * and an nats-server binary; and it refuses to start beside a `skiff up` that still runs.
 */
export const NATS_PID_FILE = 'nats-server.pid';

interface Proc {
  pid: number;
  starttime: string;
}

interface PidFile {
  natsServer: Proc;
  skiffUp: Proc;
}

/** /proc/<pid>/stat field 22 (after the command in parentheses, which may hold spaces). */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

const alive = (p: Proc) => startTimeOf(p.pid) === p.starttime;

function readPidFile(file: string): PidFile | undefined {
  try {
    const json = JSON.parse(readFileSync(file, 'utf8')) as Partial<PidFile>;
    const ok = (p: Partial<Proc> | undefined): p is Proc => Number.isInteger(p?.pid) && (p?.pid ?? 0) > 1 && typeof p?.starttime === 'string';
    return ok(json.natsServer) && ok(json.skiffUp) ? (json as PidFile) : undefined;
  } catch {
    return undefined;
  }
}

/** Records the nats-server just started (pid `pid`) and this `skiff up`. */
export function writeNatsPid(natsDir: string, pid: number): void {
  const file = join(natsDir, NATS_PID_FILE);
  const record: PidFile = {
    natsServer: { pid, starttime: startTimeOf(pid) ?? '0' },
    skiffUp: { pid: process.pid, starttime: startTimeOf(process.pid) ?? '0' },
  };
  writeFileSync(`${file}.tmp`, `${JSON.stringify(record)}\n`, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
}

/**
 * Before nats-server is started: stops one an earlier `skiff up` of this data dir left running,
 * if it is still that process and a nats-server; throws if that `skiff up` itself still runs.
 * Returns the pid it stopped, if any.
 */
export async function stopStaleNatsServer(natsDir: string, say: (line: string) => void, graceMs = 10_000): Promise<number | undefined> {
  const file = join(natsDir, NATS_PID_FILE);
  const held = readPidFile(file);
  if (!held) return undefined;
  if (held.skiffUp.pid !== process.pid && alive(held.skiffUp)) {
    throw new Error(`another skiff up (pid ${held.skiffUp.pid}) runs on this data dir; stop it first`);
  }
  const { pid } = held.natsServer;
  let exe = '';
  try {
    exe = readlinkSync(`/proc/${pid}/exe`);
  } catch {
    // gone, or not ours to look at
  }
  if (alive(held.natsServer) && basename(exe.replace(/ \(deleted\)$/, '')) === 'nats-server') {
    say(`skiff: stopping nats-server pid ${pid}, left running by an earlier skiff up of this data dir`);
    process.kill(pid, 'SIGTERM');
    const until = Date.now() + graceMs;
    while (alive(held.natsServer) && Date.now() < until) await sleep(50);
    if (alive(held.natsServer)) process.kill(pid, 'SIGKILL');
    const killed = Date.now() + 5_000;
    while (alive(held.natsServer) && Date.now() < killed) await sleep(50);
    if (alive(held.natsServer)) throw new Error(`nats-server pid ${pid}, left by an earlier skiff up, did not stop`);
    rmSync(file, { force: true });
    return pid;
  }
  rmSync(file, { force: true });
  return undefined;
}
