import { jetstreamManager } from '@nats-io/jetstream';
import { SUBJECTS, decodeJson, healthAnswerSchema, type HealthAnswer } from '@skiff/contracts';
import type { Logger } from '@skiff/service-kit';
import type { Messaging } from './messaging.js';

/** How often the gateway asks; /healthz answers from the last round, so it never waits on NATS. */
const ROUND_MS = 5000;
/** Answers are collected for at most this long, and until none came for STALL_MS. */
const ROUND_WAIT_MS = 1000;
const STALL_MS = 250;
/** More answers than this in one round are not read (a stranger cannot make a round unbounded). */
const MAX_ANSWERS = 10_000;

export interface PlatformHealth {
  jetstream: 'ok' | 'unavailable' | 'unknown';
  schedulers: number;
  workers: number;
  /** Each service that answered with a problem. */
  problems: { role: HealthAnswer['role']; id: string; problem: string }[];
  /** When the last round ended; absent before the first. */
  checkedAt?: string;
}

/**
 * The gateway's view of the platform behind it: every ROUND_MS it asks every scheduler and
 * worker how they are (SUBJECTS.health, each answers) and JetStream for the account, and keeps
 * the last round for /healthz.
 */
export class HealthWatch {
  private last: PlatformHealth = { jetstream: 'unknown', schedulers: 0, workers: 0, problems: [] };
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly messaging: Messaging,
    private readonly log: Logger,
  ) {}

  start(): void {
    void this.round();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }

  get current(): PlatformHealth {
    return this.last;
  }

  private async round(): Promise<void> {
    try {
      if (this.messaging.connected) {
        const [answers, jetstream] = await Promise.all([this.ask(), this.jetstream()]);
        const live = (role: HealthAnswer['role']) => new Set(answers.filter((a) => a.role === role).map((a) => a.id)).size;
        this.last = {
          jetstream,
          schedulers: live('scheduler'),
          workers: live('worker'),
          problems: answers.flatMap((a) => a.problems.map((problem) => ({ role: a.role, id: a.id, problem }))),
          checkedAt: new Date().toISOString(),
        };
      } else {
        this.last = { jetstream: 'unknown', schedulers: 0, workers: 0, problems: [], checkedAt: new Date().toISOString() };
      }
    } catch (err) {
      this.log.warn({ err }, 'health round failed');
    } finally {
      if (!this.closed) {
        this.timer = setTimeout(() => void this.round(), ROUND_MS);
        this.timer.unref();
      }
    }
  }

  private async ask(): Promise<HealthAnswer[]> {
    const answers: HealthAnswer[] = [];
    try {
      const replies = await this.messaging.nc.requestMany(SUBJECTS.health, undefined, { strategy: 'stall', stall: STALL_MS, maxWait: ROUND_WAIT_MS, maxMessages: MAX_ANSWERS });
      for await (const m of replies) {
        try {
          answers.push(decodeJson(healthAnswerSchema, m.data, 'health answer'));
        } catch (err) {
          this.log.warn({ err }, 'health answer rejected');
        }
      }
    } catch {
      // No responders, or NATS went away mid-round: no service answered.
    }
    return answers;
  }

  private async jetstream(): Promise<PlatformHealth['jetstream']> {
    try {
      await (await jetstreamManager(this.messaging.nc, { timeout: ROUND_WAIT_MS })).getAccountInfo();
      return 'ok';
    } catch {
      return 'unavailable';
    }
  }
}
