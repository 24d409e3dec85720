import { jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@skiff/service-kit';

export interface SharedConsumerOptions {
  stream: string;
  /** The durable consumer's name: every scheduler pulls from the same one. */
  durable: string;
  filterSubject: string;
  ackWaitMs: number;
  /** Messages being handled at once across all schedulers (max_ack_pending). */
  maxInFlight: number;
  /** For the logs: what this consumer does, e.g. "async delivery". */
  what: string;
  /** How long a message whose handler threw waits before JetStream offers it again. */
  failedDelayMs: number;
}

const PULL_EXPIRES_MS = 5000;
const RESTART_MS = 1000;

/**
 * One durable consumer of a work-queue stream that all schedulers share, each message handled
 * as it arrives, many at once. A handler that throws (JetStream or NATS failed under it) has its
 * message offered again after `failedDelayMs`, or after the ack wait if even that nak is lost.
 * The consumer is added, or brought to these settings, at start, and set up again a second after
 * it ends by itself (its consumer or stream went away).
 */
export class SharedConsumer {
  private messages: ConsumerMessages | undefined;
  private restart: NodeJS.Timeout | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private readonly running = new Set<Promise<void>>();

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: SharedConsumerOptions,
    private readonly handle: (m: JsMsg) => Promise<void>,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const { stream, durable } = this.opts;
    const jsm = await jetstreamManager(this.nc, { timeout: 5000 });
    const config = {
      durable_name: durable,
      ack_policy: 'explicit' as const,
      ack_wait: nanos(this.opts.ackWaitMs),
      max_deliver: -1,
      max_ack_pending: this.opts.maxInFlight,
      filter_subject: this.opts.filterSubject,
    };
    try {
      await jsm.consumers.add(stream, config);
    } catch (err) {
      if (!/already in use|already exists/i.test((err as Error).message)) throw err;
      await jsm.consumers.update(stream, durable, { ack_wait: config.ack_wait, max_ack_pending: config.max_ack_pending });
    }
    const consumer = await jetstream(this.nc).consumers.get(stream, durable);
    // Short pulls: after NATS or JetStream comes back, a pull lost with it is noticed (missed
    // heartbeats, half of `expires`) and made again within seconds.
    const messages = await consumer.consume({ max_messages: Math.min(this.opts.maxInFlight, 256), expires: PULL_EXPIRES_MS });
    this.messages = messages;
    this.loop = (async () => {
      for await (const m of messages) {
        const job = this.handle(m).catch((err: unknown) => {
          this.log.warn({ err: (err as Error).message, subject: m.subject }, `${this.opts.what} interrupted; JetStream offers it again`);
          m.nak(this.opts.failedDelayMs);
        });
        this.running.add(job);
        void job.finally(() => this.running.delete(job));
      }
      if (!this.stopped) this.restartSoon(`the ${this.opts.what} consumer stopped`);
    })();
  }

  private restartSoon(why: string): void {
    this.log.warn({ why }, `setting up ${this.opts.what} again in ${RESTART_MS} ms`);
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
}
