import { jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders, nanos, type NatsConnection } from '@nats-io/transport-node';
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
const PULL_EXPIRES_MS = 5000;
const RESTART_MS = 1000;

/**
 * Sends outcome events from the outbox (SKIFF_OUTCOMES) to their destination: every scheduler
 * pulls from one durable consumer, so each event is sent by one of them at a time. A NATS
 * subject gets it published (flushed to the server); a URL gets it POSTed, any 2xx being
 * delivered. A failure is offered again after its backoff; after the last attempt the event is
 * logged at error, counted as dropped and removed: the one place an outcome is let go.
 */
export class OutcomeSender {
  private messages: ConsumerMessages | undefined;
  private restart: NodeJS.Timeout | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: OutcomeSenderOptions,
    private readonly metrics: DestinationMetrics,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const jsm = await jetstreamManager(this.nc, { timeout: 5000 });
    const config = {
      durable_name: JETSTREAM.outcomesConsumer,
      ack_policy: 'explicit' as const,
      ack_wait: nanos(ACK_WAIT_MS),
      max_deliver: -1,
      max_ack_pending: this.opts.maxInFlight,
      filter_subject: 'skiff.outcome.>',
    };
    try {
      await jsm.consumers.add(JETSTREAM.outcomesStream, config);
    } catch (err) {
      if (!/already in use|already exists/i.test((err as Error).message)) throw err;
      await jsm.consumers.update(JETSTREAM.outcomesStream, JETSTREAM.outcomesConsumer, { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending });
    }
    const consumer = await jetstream(this.nc).consumers.get(JETSTREAM.outcomesStream, JETSTREAM.outcomesConsumer);
    const messages = await consumer.consume({ max_messages: Math.min(this.opts.maxInFlight, 256), expires: PULL_EXPIRES_MS });
    this.messages = messages;
    this.loop = (async () => {
      for await (const m of messages) {
        const job = this.send(m).catch((err: unknown) => {
          this.log.warn({ err: (err as Error).message, subject: m.subject }, 'outcome event not sent; JetStream offers it again');
          m.nak(RESTART_MS);
        });
        this.running.add(job);
        void job.finally(() => this.running.delete(job));
      }
      if (!this.stopped) this.restartSoon('the outcome consumer stopped');
    })();
  }

  private restartSoon(why: string): void {
    this.log.warn({ why }, `setting up outcome delivery again in ${RESTART_MS} ms`);
    this.restart = setTimeout(() => {
      this.start().catch((err: unknown) => {
        if (!this.stopped) this.restartSoon((err as Error).message);
      });
    }, RESTART_MS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restart);
    await this.messages?.close();
    await this.loop;
    await Promise.allSettled([...this.running]);
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
