import { JetStreamApiError, JetStreamApiCodes, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/nats-core';
import { z } from 'zod';
import { INVOCATION_ID_PATTERN, JETSTREAM, SUBJECTS } from '@skiff/contracts';

/** `skipped`: a scheduled tick missed while no scheduler ran, with catchUp off (error SKIFF_TICK_MISSED); it never runs. */
export const INVOCATION_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'dead', 'skipped'] as const;
export type InvocationStatus = (typeof INVOCATION_STATUSES)[number];

/** Results up to this size are kept in the record; a larger one is noted by its size only. */
export const MAX_RECORDED_RESULT_BYTES = 64 * 1024;
/** Attempt errors are kept to this length (the end of an exec function's stderr is in them). */
const MAX_ERROR_DETAIL = 2048;

const attemptSchema = z.object({
  attempt: z.number().int().positive(),
  startedAt: z.string(),
  endedAt: z.string().optional(),
  nodeId: z.string().optional(),
  error: z.object({ code: z.string(), detail: z.string() }).optional(),
});
export type AttemptRecord = z.infer<typeof attemptSchema>;

const recordSchema = z.object({
  id: z.string().regex(INVOCATION_ID_PATTERN),
  fn: z.string(),
  fnVersion: z.number().int().positive(),
  status: z.enum(INVOCATION_STATUSES),
  acceptedAt: z.string(),
  updatedAt: z.string(),
  idempotencyKey: z.string().optional(),
  attempts: z.array(attemptSchema),
  /** When the next attempt is due, while queued after a failure. */
  nextAttemptAt: z.string().optional(),
  result: z
    .object({
      contentType: z.string().optional(),
      bytes: z.number().int().nonnegative(),
      /** Base64 of the result, when it was at most MAX_RECORDED_RESULT_BYTES. */
      body: z.string().optional(),
    })
    .optional(),
  error: z.object({ code: z.string(), detail: z.string() }).optional(),
});
export type InvocationRecord = z.infer<typeof recordSchema>;

export const clipDetail = (detail: string) => (detail.length > MAX_ERROR_DETAIL ? `…${detail.slice(-MAX_ERROR_DETAIL)}` : detail);

/**
 * Invocation records in the SKIFF_RECORDS stream: one subject per invocation id, only its last
 * write kept, expired after the retention. Written by the gateway (accepted, deleted function)
 * and by the schedulers (each attempt and the outcome); read by the gateway's API.
 */
export class InvocationRecords {
  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
  ) {}

  static async open(nc: NatsConnection): Promise<InvocationRecords> {
    return new InvocationRecords(jetstream(nc, { timeout: 5000 }), await jetstreamManager(nc, { timeout: 5000 }));
  }

  /** Stores the record; resolves once JetStream has it. */
  async put(record: InvocationRecord): Promise<void> {
    await this.js.publish(SUBJECTS.record(record.id), JSON.stringify(record));
  }

  /**
   * Stores the record only if the invocation has none yet; false if it has. Of two schedulers
   * that find the same tick missed, one records it.
   */
  async putIfAbsent(record: InvocationRecord): Promise<boolean> {
    try {
      await this.js.publish(SUBJECTS.record(record.id), JSON.stringify(record), { expect: { lastSubjectSequence: 0 } });
      return true;
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence) return false;
      throw err;
    }
  }

  async get(id: string): Promise<InvocationRecord | undefined> {
    const m = await this.jsm.direct.getMessage(JETSTREAM.recordsStream, { last_by_subj: SUBJECTS.record(id) });
    return m ? parse(m.data) : undefined;
  }

  /**
   * The function's records in the order of their last change, from the stream sequence
   * `cursor` on; `next` continues after the last one returned.
   */
  async list(fn: string, cursor: number, limit: number): Promise<{ records: InvocationRecord[]; next: number | undefined }> {
    const records: InvocationRecord[] = [];
    let seq = cursor;
    while (records.length < limit) {
      const m = await this.jsm.direct.getMessage(JETSTREAM.recordsStream, { seq, next_by_subj: SUBJECTS.record(`${fn}.*`) });
      if (!m) return { records, next: undefined };
      const r = parse(m.data);
      if (r) records.push(r);
      seq = m.seq + 1;
    }
    return { records, next: seq };
  }
}

function parse(data: Uint8Array): InvocationRecord | undefined {
  try {
    return recordSchema.parse(JSON.parse(new TextDecoder().decode(data)));
  } catch {
    return undefined; // not written by Skiff's own code: nothing to show
  }
}
