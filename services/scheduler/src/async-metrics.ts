import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { JETSTREAM } from '@skiff/contracts';
import { meter, type Counter, type Meter } from '@skiff/telemetry';

/**
 * How an attempt of an async invocation ended: succeeded; failed and tried again (`retried`),
 * failed for good (`failed`: not retried; `exhausted`: its last attempt); or cut off before it had
 * an outcome (`interrupted`: its scheduler stopped or JetStream failed under it).
 */
export type AttemptOutcome = 'succeeded' | 'retried' | 'failed' | 'exhausted' | 'interrupted';

/** How often the queue's and the dead letters' sizes are read from JetStream for the gauges. */
const STREAM_READ_MS = 5000;

/**
 * OpenTelemetry instruments of async delivery (names in docs/telemetry.md): attempts by
 * function and outcome, dead letters kept against their limit, and dead letters refused because
 * the limit was reached (their invocations stay queued), so nothing leaves unseen.
 */
export class AsyncMetrics {
  private readonly attempts: Counter;
  private readonly buried: Counter;
  private readonly refused: Counter;
  private sizes = { queued: 0, dead: 0 };
  private timer: NodeJS.Timeout | undefined;

  /** Uses the process's MeterProvider by default, so create it after startTelemetry. */
  constructor(
    private readonly nc: NatsConnection,
    maxDeadLetters: number,
    m: Meter = meter('@skiff/scheduler'),
  ) {
    this.attempts = m.createCounter('skiff.async.attempts', { unit: '{attempt}', description: 'Attempts of async invocations, by function and how each ended' });
    this.buried = m.createCounter('skiff.async.dead', { unit: '{invocation}', description: 'Async invocations that ended dead and went to the dead letters' });
    this.refused = m.createCounter('skiff.async.dead_letters.refused', { unit: '{invocation}', description: 'Dead invocations the dead letters could not take (full or unreachable); each stays queued' });
    m.createObservableGauge('skiff.async.queued', { unit: '{invocation}', description: 'Async invocations in the queue (waiting or running)' }).addCallback((r) => r.observe(this.sizes.queued));
    m.createObservableGauge('skiff.async.dead_letters', { unit: '{invocation}', description: 'Dead letters kept' }).addCallback((r) => r.observe(this.sizes.dead));
    m.createObservableGauge('skiff.async.dead_letters.limit', { unit: '{invocation}', description: 'Dead letters kept at most (SKIFF_DEAD_LETTERS_MAX)' }).addCallback((r) => r.observe(maxDeadLetters));
  }

  /** Reads the streams' sizes now and every few seconds (a gauge's callback cannot wait for JetStream). */
  start(): void {
    const read = async () => {
      const jsm = await jetstreamManager(this.nc, { timeout: 5000 });
      const [queued, dead] = await Promise.all([jsm.streams.info(JETSTREAM.asyncStream), jsm.streams.info(JETSTREAM.deadStream)]);
      this.sizes = { queued: queued.state.messages, dead: dead.state.messages };
    };
    const tick = () => void read().catch(() => undefined); // the last sizes stay until JetStream answers again
    tick();
    this.timer = setInterval(tick, STREAM_READ_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  attempt(fn: string, outcome: AttemptOutcome): void {
    this.attempts.add(1, { 'faas.name': fn, 'skiff.outcome': outcome });
  }

  dead(fn: string): void {
    this.buried.add(1, { 'faas.name': fn });
  }

  deadLetterRefused(fn: string): void {
    this.refused.add(1, { 'faas.name': fn });
  }
}
