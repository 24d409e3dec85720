import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { SkiffError, type ErrorCode } from '@skiff/contracts';
import type { LayerJob, LayerResult } from './layer-job.js';

export interface JobRequest {
  job: LayerJob;
}

export type JobReply =
  | { type: 'progress'; bytes: number }
  | { type: 'done'; result: LayerResult }
  | { type: 'error'; code: ErrorCode; message: string };

/** Layers applied at once; more than the cores would only make them fight over the CPU. */
const MAX_THREADS = Math.max(1, Math.min(availableParallelism(), 4));
/** A second idle thread is kept this long for the next layer (one is always kept). */
const IDLE_MS = 30_000;

/**
 * The compiled thread script. Tests run this package from source (vitest), where there is no
 * JavaScript beside this file; the thread then runs the build in dist/, so build first
 * (`npm test` does).
 */
function threadScript(): string {
  const rel = import.meta.url.endsWith('.ts') ? '../dist/layer-thread.js' : './layer-thread.js';
  return fileURLToPath(new URL(rel, import.meta.url));
}

/** A thread that crashed or exited mid-layer; it is not returned to the pool. */
class ThreadDied extends Error {
  constructor(readonly error: SkiffError) {
    super(error.message);
  }
}

interface Slot {
  worker: Worker;
  timer?: NodeJS.Timeout;
}

/**
 * A small pool of worker threads that apply layers, so the calling thread's event loop stays
 * free while an image unpacks (gunzip, two sha256 streams, tar parsing and thousands of fs
 * calls per layer). Threads never keep the process alive when idle. One idle thread is kept
 * for the next image (starting one and loading its modules costs about 200 ms); any others
 * exit after IDLE_MS.
 */
class LayerThreads {
  private readonly idle: Slot[] = [];
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  /** Starts a thread ahead of the first layer, if none is idle. */
  warm(): void {
    if (this.idle.length === 0 && this.running === 0) this.park(this.spawn());
  }

  async run(job: LayerJob, onProgress?: (bytes: number) => void): Promise<LayerResult> {
    await this.acquire();
    const slot = this.idle.pop() ?? this.spawn();
    clearTimeout(slot.timer);
    slot.worker.ref();
    try {
      const result = await this.once(slot.worker, job, onProgress);
      this.park(slot);
      return result;
    } catch (err) {
      // The thread reported the failure and is idle again, or it died (then it is gone).
      if (!(err instanceof ThreadDied)) this.park(slot);
      throw err instanceof ThreadDied ? err.error : err;
    } finally {
      this.release();
    }
  }

  private spawn(): Slot {
    const slot: Slot = { worker: new Worker(threadScript()) };
    // A thread that dies while idle leaves the pool; its error is reported by the job it was on, if any.
    slot.worker.on('error', () => undefined);
    slot.worker.once('exit', () => this.forget(slot));
    return slot;
  }

  private forget(slot: Slot): void {
    clearTimeout(slot.timer);
    const i = this.idle.indexOf(slot);
    if (i >= 0) this.idle.splice(i, 1);
  }

  private async acquire(): Promise<void> {
    if (this.running < MAX_THREADS) {
      this.running += 1;
      return;
    }
    // release() hands its place straight to us, so `running` stays as it is.
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running -= 1;
  }

  private once(worker: Worker, job: LayerJob, onProgress?: (bytes: number) => void): Promise<LayerResult> {
    return new Promise<LayerResult>((resolve, reject) => {
      const stop = (): void => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      const died = (error: SkiffError): void => {
        stop();
        // Settle only when the thread is gone for good, so nothing writes to the tree after.
        void worker.terminate().finally(() => reject(new ThreadDied(error)));
      };
      const onMessage = (reply: JobReply): void => {
        if (reply.type === 'progress') return onProgress?.(reply.bytes);
        stop();
        if (reply.type === 'done') resolve(reply.result);
        else reject(new SkiffError(reply.code, reply.message));
      };
      const onError = (err: Error): void => died(new SkiffError('SKIFF_INTERNAL', `layer thread failed on layer ${job.index}: ${err.message}`, { cause: err }));
      const onExit = (code: number): void => died(new SkiffError('SKIFF_INTERNAL', `layer thread exited (${code}) while applying layer ${job.index}`));
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.postMessage({ job } satisfies JobRequest);
    });
  }

  private park(slot: Slot): void {
    slot.worker.unref();
    if (this.idle.length > 0) slot.timer = setTimeout(() => void slot.worker.terminate(), IDLE_MS).unref();
    this.idle.push(slot);
  }
}

const threads = new LayerThreads();

/** Applies a layer on a layer thread; resolves once the thread has finished touching the tree. */
export function runLayerJob(job: LayerJob, onProgress?: (bytes: number) => void): Promise<LayerResult> {
  return threads.run(job, onProgress);
}

/** Starts a layer thread now, so the first layer does not wait for one (a no-op when one is idle). */
export function warmLayerThreads(): void {
  threads.warm();
}
