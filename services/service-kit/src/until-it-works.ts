export interface Retrying {
  /** Stops the tries that have not started yet. */
  cancel(): void;
}

/**
 * Runs `work` until it resolves: after each failure (told to `failed`, with the wait) it is
 * tried again `everyMs` later. For setting up what depends on another service (JetStream's
 * streams and consumers), which may come up after this one.
 */
export function untilItWorks(work: () => Promise<void>, everyMs: number, failed: (err: unknown, retryMs: number) => void): Retrying {
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const attempt = () => {
    work().catch((err: unknown) => {
      if (cancelled) return;
      failed(err, everyMs);
      timer = setTimeout(attempt, everyMs);
    });
  };
  attempt();
  return {
    cancel: () => {
      cancelled = true;
      clearTimeout(timer);
    },
  };
}
