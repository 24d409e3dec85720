import type { JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { SharedConsumer } from './shared-consumer.js';
import { JETSTREAM } from '@skiff/contracts';
import { OUTCOME_CONTENT_TYPE, backoffMs, destinationOf, type DestinationKind } from '@skiff/events';
import type { Logger } from '@skiff/service-kit';
import type { DestinationMetrics } from './destination-metrics.js';
import { postEvent } from './post-event.js';

export interface OutcomeSenderOptions {
  /** Attempts per event and destination; after the last one it is logged, counted and removed. */
  attempts: number;
  /** The wait before the second attempt, doubled for each further one, up to `backoffCapMs`. */
  backoffMs: number;
  backoffCapMs: number;
  /** Events being sent at once across all schedulers (the consumer's max_ack_pending). */
  maxInFlight: number;
}

/** 12 attempts, 2 s doubling up to 15 min: about 47 minutes from the first to the last. */
export const DEFAULT_OUTCOME_SENDER: OutcomeSenderOptions = { attempts: 12, backoffMs: 2000, backoffCapMs: 900_000, maxInFlight: 256 };

/** Longer than one HTTP attempt (POST_TIMEOUT_MS), so JetStream does not offer an event twice at once. */
const ACK_WAIT_MS = 30_000;
/** An event whose sending failed under JetStream or NATS is offered again after this. */
const RETRY_AFTER_FAILURE_MS = 1000;

/**
 * Sends outcome events from the outbox (SKIFF_OUTCOMES) to their destination: every scheduler
 * pulls from one durable consumer, so each event is sent by one of them at a time. A NATS
 * subject gets it published (flushed to the server); a URL gets it POSTed, any 2xx being
 * delivered. A failure is offered again after its backoff; after the last attempt the event is
 * logged at error, counted as dropped and removed: the one place an outcome is let go.
 */
export class OutcomeSender {
  private readonly consumer: SharedConsumer;

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: OutcomeSenderOptions,
    private readonly metrics: DestinationMetrics,
    private readonly log: Logger,
  ) {
    this.consumer = new SharedConsumer(
      nc,
      { stream: JETSTREAM.outcomesStream, durable: JETSTREAM.outcomesConsumer, filterSubject: 'skiff.outcome.>', ackWaitMs: ACK_WAIT_MS, maxInFlight: opts.maxInFlight, what: 'outcome delivery', failedDelayMs: RETRY_AFTER_FAILURE_MS },
      (m) => this.send(m),
      log,
    );
  }

  start(): Promise<void> {
    return this.consumer.start();
  }

  stop(): Promise<void> {
    return this.consumer.stop();
  }

  private async send(m: JsMsg): Promise<void> {
    // skiff.outcome.<kind>.<event id>
    const kind = m.subject.split('.')[2] as DestinationKind;
    let to: string;
    try {
      if (kind !== 'subject' && kind !== 'url') throw new Error(`no destination kind "${kind}"`);
      to = destinationOf(kind, m.headers);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, subject: m.subject }, 'outcome event rejected');
      m.term();
      return;
    }
    const attempt = m.info.deliveryCount;
    const failure = kind === 'subject' ? await this.publish(to, m.data) : await postEvent(to, m.data);
    if (failure === undefined) {
      m.ack();
      this.metrics.delivered(kind);
      return;
    }
    if (attempt >= this.opts.attempts) {
      // Removed, not kept: a destination that never answers must not fill the outbox.
      m.ack();
      this.metrics.dropped(kind);
      this.log.error({ destination: to, kind, subject: m.subject, attempts: attempt, why: failure }, 'outcome event dropped after its last attempt');
      return;
    }
    const delay = backoffMs(attempt + 1, this.opts.backoffMs, this.opts.backoffCapMs);
    m.nak(delay);
    this.metrics.retried(kind);
    this.log.warn({ destination: to, kind, attempt, why: failure, retryInMs: delay }, 'outcome event not delivered; trying again');
  }

  /** Publishes the event; undefined once the server has it, else why not. */
  private async publish(subject: string, body: Uint8Array): Promise<string | undefined> {
    try {
      const h = natsHeaders();
      h.set('Content-Type', OUTCOME_CONTENT_TYPE);
      this.nc.publish(subject, body, { headers: h });
      await this.nc.flush();
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }
}
