import { readFileSync } from 'node:fs';
import { functionProcesses } from './cgroups.js';
import { waitUntil } from './nats.js';

/**
 * An exec-mode function script (run as `/bin/sh /function/<file>`): given the body "hold" it
 * runs until the test lets it go (heldContainer), then answers "done"; any other body, at once.
 * It lets tests order events by what the container does, not by how long it sleeps.
 */
export const HELD_SCRIPT = `trap 'echo done; exit 0' USR1
read -r body
[ "$body" = hold ] || { echo done; exit 0; }
while :; do sleep 3600 & wait; done
`;

/** Whether the process catches `signal` (its SigCgt mask), from /proc/<pid>/status. */
function catches(status: string, signal: number): boolean {
  const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return mask !== undefined && (BigInt(`0x${mask}`) & (1n << BigInt(signal - 1))) !== 0n;
}

/**
 * Waits for a container of `fn` running HELD_SCRIPT with its trap set (its PID 1, the shell,
 * catches SIGUSR1), and returns what lets it go. Function names are host-wide here (cgroups):
 * give each run its own.
 */
export async function heldContainer(fn: string): Promise<() => void> {
  let pid: string | undefined;
  await waitUntil(async () => {
    pid = functionProcesses(fn).find((p) => {
      try {
        const status = readFileSync(`/proc/${p}/status`, 'utf8');
        const cmdline = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return /^NSpid:.*\t1$/m.test(status) && cmdline.startsWith('/bin/sh\0') && catches(status, 10);
      } catch {
        return false; // gone meanwhile
      }
    });
    return pid !== undefined;
  }, `a held container of ${fn}`);
  return () => process.kill(Number(pid), 'SIGUSR1');
}
