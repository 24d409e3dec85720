import type { Logger } from './logger.js';

/** What can ask a service to stop. */
export type StopReason = 'SIGTERM' | 'SIGINT' | 'supervisor gone';

/** The parts of `process` used here (a stand-in in unit tests). */
export interface StopHost {
  on(event: 'SIGTERM' | 'SIGINT' | 'disconnect', listener: () => void): unknown;
  send?: unknown;
  exit(code: number): void;
}

/**
 * Runs a service's `stop` once, on the first SIGTERM or SIGINT (or when the supervisor that
 * started it over an IPC channel is gone), then exits: 0 when it finished, 1 when it failed.
 * A terminal's Ctrl-C reaches every process of its group while a supervisor sends SIGTERM as
 * well, so the same stop is often asked for twice; a stop run twice closes what is closed
 * already. Later requests are logged and ignored: bounding the stop is the supervisor's part
 * (`skiff up`, or systemd's TimeoutStopSec), which kills what does not exit in time.
 */
export function stopOnSignals(stop: () => Promise<void>, log: Logger, host: StopHost = process): (reason: StopReason) => void {
  let stopping = false;
  const begin = (reason: StopReason): void => {
    if (stopping) {
      log.info({ reason }, 'already stopping; the request is ignored');
      return;
    }
    stopping = true;
    log.info({ reason }, 'stopping');
    stop().then(
      () => host.exit(0),
      (err: unknown) => {
        log.error({ err }, 'stopping failed');
        host.exit(1);
      },
    );
  };
  host.on('SIGTERM', () => begin('SIGTERM'));
  host.on('SIGINT', () => begin('SIGINT'));
  // Started by `skiff up` with an IPC channel: when it dies (even by SIGKILL), the channel closes.
  if (host.send) host.on('disconnect', () => begin('supervisor gone'));
  return begin;
}
