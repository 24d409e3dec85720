// CPU time of processes, from /proc: for telling which hop an invocation's time goes to.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Microseconds per clock tick (/proc/<pid>/stat counts in ticks). */
export const TICK_US = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

/** User + system CPU ticks of one process so far; 0 once it has ended. */
export function ticksOf(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** The pid of the process whose command line contains every one of `parts`, or undefined. */
export function pidWith(...parts) {
  for (const line of execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).split('\n')) {
    const m = line.trim().match(/^(\d+)\s+(.*)$/);
    if (m && parts.every((p) => m[2].includes(p))) return Number(m[1]);
  }
  return undefined;
}
