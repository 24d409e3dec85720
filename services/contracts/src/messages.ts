/**
 * Message schemas. Invocations keep the body as raw bytes and carry their metadata in NATS
 * headers; control messages (heartbeats, node table) are small JSON documents. Receivers
 * always parse with these schemas and reject what does not fit.
 */
import type { MsgHdrs } from '@nats-io/nats-core';
import { z } from 'zod';
import { SkiffError, isErrorCode, type ErrorBody } from './errors.js';
import { encodeSettings, settingsHeader, type RunSettings } from './settings.js';
import { CALL_ID_PATTERN, FUNCTION_NAME_PATTERN, IDEMPOTENCY_KEY_PATTERN, NODE_ID_PATTERN, TRIGGER_EVENT_SUBJECT_PATTERN } from './subjects.js';
import { WireHeaders } from './wire-headers.js';

export const PROTOCOL_VERSION = 1;

/** Header names. Case matters on the wire, so they are spelled once, here. */
export const H = {
  type: 'Skiff-Msg',
  version: 'Skiff-Version',
  callId: 'Skiff-Call-Id',
  deadline: 'Skiff-Deadline',
  fn: 'Skiff-Function',
  fnVersion: 'Skiff-Function-Version',
  image: 'Skiff-Image',
  mode: 'Skiff-Mode',
  settings: 'Skiff-Settings',
  outcome: 'Skiff-Outcome',
  contentType: 'Skiff-Content-Type',
  node: 'Skiff-Node',
  /** Async invocations: which attempt this is (1 for the first), and the caller's Idempotency-Key. */
  attempt: 'Skiff-Attempt',
  idempotencyKey: 'Skiff-Idempotency-Key',
  /** Subject triggers: the event's subject, its id, and its NATS headers (a JSON object). */
  eventSubject: 'Skiff-Event-Subject',
  eventId: 'Skiff-Event-Id',
  eventHeaders: 'Skiff-Event-Headers',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
} as const;

export const FUNCTION_MODES = ['exec', 'stream'] as const;

export type FunctionMode = (typeof FUNCTION_MODES)[number];

const digest = z.string().regex(/^sha256:[a-f0-9]{64}$/, 'must be a sha256 digest');
const callId = z.string().regex(CALL_ID_PATTERN, 'must be 1-128 characters of [A-Za-z0-9._-], starting with a letter or digit');
const intString = z.string().regex(/^[0-9]{1,16}$/, 'must be a non-negative integer').transform(Number);
const positiveIntString = z.string().regex(/^[1-9][0-9]{0,15}$/, 'must be a positive integer').transform(Number);
/** A function name by the API's own rule (FUNCTION_NAME_PATTERN). */
const fnName = z.string().regex(FUNCTION_NAME_PATTERN, 'must be a function name: lower-case letters, digits and dashes, starting with a letter, at most 63 characters');
/** A W3C Trace Context `traceparent` header value (version, trace id, parent id, flags). */
export const TRACEPARENT_PATTERN = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const traceparent = z.string().regex(TRACEPARENT_PATTERN, 'must be a W3C traceparent');

const contentType = z.string().min(1).max(256).regex(/^[\x20-\x7e]+$/, 'must be printable ASCII');
const idempotencyKey = z.string().regex(IDEMPOTENCY_KEY_PATTERN, 'must be 1-256 printable ASCII characters');
const eventSubject = z.string().regex(TRIGGER_EVENT_SUBJECT_PATTERN, 'must be a NATS subject without wildcards');
/** The event's own headers, name → values, as JSON; bounded so a stranger's headers cannot grow the invocation. */
export const MAX_EVENT_HEADERS_BYTES = 8192;
const eventHeaders = z
  .string()
  .max(MAX_EVENT_HEADERS_BYTES)
  .transform((text, ctx) => {
    const parsed = z.record(z.string(), z.array(z.string())).safeParse((() => { try { return JSON.parse(text); } catch { return undefined; } })());
    if (!parsed.success) {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object of header names to lists of values' });
      return z.NEVER;
    }
    return parsed.data;
  });

const invocationHeaders = z.object({
  [H.type]: z.literal('invoke'),
  [H.version]: z.literal(String(PROTOCOL_VERSION)),
  [H.callId]: callId,
  [H.deadline]: intString,
  [H.fn]: fnName,
  [H.fnVersion]: positiveIntString,
  [H.image]: digest,
  [H.mode]: z.enum(FUNCTION_MODES),
  [H.settings]: settingsHeader,
  [H.traceparent]: traceparent.optional(),
  [H.tracestate]: z.string().max(512).optional(),
  [H.contentType]: contentType.optional(),
  [H.attempt]: positiveIntString.optional(),
  [H.idempotencyKey]: idempotencyKey.optional(),
  [H.eventSubject]: eventSubject.optional(),
  [H.eventId]: callId.optional(),
  [H.eventHeaders]: eventHeaders.optional(),
});

/** What every hop knows about one invocation (the body travels beside it). */
export interface Invocation {
  callId: string;
  /** Absolute deadline, ms since the epoch, set once at the edge. */
  deadline: number;
  fn: string;
  fnVersion: number;
  /** Manifest digest of the function version's image in the store. */
  image: string;
  mode: FunctionMode;
  settings: RunSettings;
  traceparent?: string | undefined;
  tracestate?: string | undefined;
  /** The request body's media type, as the client sent it. */
  contentType?: string | undefined;
  /** Async invocations only: the attempt (1, 2, …) and the caller's Idempotency-Key. */
  attempt?: number | undefined;
  idempotencyKey?: string | undefined;
  /** Subject triggers only: the message that started the call. */
  event?: TriggerEvent | undefined;
}

/** What a function sees of the NATS message that triggered it. */
export interface TriggerEvent {
  subject: string;
  id: string;
  headers: Record<string, string[]>;
}

export function encodeInvocation(inv: Invocation): MsgHdrs {
  const h = new WireHeaders()
    .add(H.type, 'invoke')
    .add(H.version, String(PROTOCOL_VERSION))
    .add(H.callId, inv.callId)
    .add(H.deadline, String(inv.deadline))
    .add(H.fn, inv.fn)
    .add(H.fnVersion, String(inv.fnVersion))
    .add(H.image, inv.image)
    .add(H.mode, inv.mode)
    .add(H.settings, encodeSettings(inv.settings));
  if (inv.traceparent) h.add(H.traceparent, inv.traceparent);
  if (inv.tracestate) h.add(H.tracestate, inv.tracestate);
  if (inv.contentType) h.add(H.contentType, inv.contentType);
  if (inv.attempt) h.add(H.attempt, String(inv.attempt));
  if (inv.idempotencyKey) h.add(H.idempotencyKey, inv.idempotencyKey);
  if (inv.event) {
    h.add(H.eventSubject, inv.event.subject).add(H.eventId, inv.event.id);
    if (Object.keys(inv.event.headers).length > 0) h.add(H.eventHeaders, JSON.stringify(inv.event.headers));
  }
  return h;
}

/** Each header's first value. Iterated, not looked up: MsgHdrs.get() copies and scans all keys per call. */
function headerRecord(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const [key, values] of h) if (values.length > 0) out[key] = values[0] as string;
  return out;
}

function badMessage(what: string, error: z.ZodError): SkiffError {
  return new SkiffError('SKIFF_BAD_MESSAGE', `${what} rejected: ${z.prettifyError(error)}`, {
    errors: error.issues.map((i) => ({ field: i.path.join('.'), message: i.message })),
  });
}

export function decodeInvocation(h: MsgHdrs | undefined): Invocation {
  const parsed = invocationHeaders.safeParse(headerRecord(h));
  if (!parsed.success) throw badMessage('invocation', parsed.error);
  const p = parsed.data;
  return {
    callId: p[H.callId],
    deadline: p[H.deadline],
    fn: p[H.fn],
    fnVersion: p[H.fnVersion],
    image: p[H.image],
    mode: p[H.mode],
    settings: p[H.settings],
    traceparent: p[H.traceparent],
    tracestate: p[H.tracestate],
    contentType: p[H.contentType],
    attempt: p[H.attempt],
    idempotencyKey: p[H.idempotencyKey],
    event: eventOf(p[H.eventSubject], p[H.eventId], p[H.eventHeaders]),
  };
}

function eventOf(subject: string | undefined, id: string | undefined, headers: Record<string, string[]> | undefined): TriggerEvent | undefined {
  return subject && id ? { subject, id, headers: headers ?? {} } : undefined;
}

/**
 * The call id to answer a refused invocation with: its own when that one is valid, otherwise
 * "0" (the refusal must still reach the caller, who waits on the reply subject).
 */
export function replyCallId(h: MsgHdrs | undefined): string {
  const raw = h?.get(H.callId);
  return raw && CALL_ID_PATTERN.test(raw) ? raw : '0';
}

/** Milliseconds left before the deadline (never negative). */
export function remainingMs(deadline: number, now = Date.now()): number {
  return Math.max(0, deadline - now);
}

// ---- results (worker → the gateway's inbox; scheduler → inbox when it cannot place) ----

export type InvocationResult =
  | { ok: true; callId: string; body: Uint8Array; contentType: string | undefined }
  | { ok: false; callId: string; error: SkiffError };

export function encodeResultHeaders(callId: string, ok: boolean, contentType?: string): MsgHdrs {
  const h = new WireHeaders();
  if (contentType) h.add(H.contentType, contentType);
  return h
    .add(H.type, 'result')
    .add(H.version, String(PROTOCOL_VERSION))
    .add(H.callId, callId)
    .add(H.outcome, ok ? 'ok' : 'error');
}

export function encodeError(err: SkiffError): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(err.toJSON()));
}

const resultHeaders = z.object({
  [H.type]: z.literal('result'),
  [H.version]: z.literal(String(PROTOCOL_VERSION)),
  [H.callId]: callId,
  [H.outcome]: z.enum(['ok', 'error']),
  [H.contentType]: contentType.optional(),
});

const errorBody = z.object({
  code: z.string().refine(isErrorCode, 'must be a known error code'),
  detail: z.string(),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
});

export function decodeResult(h: MsgHdrs | undefined, body: Uint8Array): InvocationResult {
  const parsed = resultHeaders.safeParse(headerRecord(h));
  if (!parsed.success) throw badMessage('invocation result', parsed.error);
  const id = parsed.data[H.callId];
  if (parsed.data[H.outcome] === 'ok') return { ok: true, callId: id, body, contentType: parsed.data[H.contentType] };
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(body));
  } catch (cause) {
    throw new SkiffError('SKIFF_BAD_MESSAGE', 'invocation error body is not JSON', { cause });
  }
  const e = errorBody.safeParse(json);
  if (!e.success) throw badMessage('invocation error body', e.error);
  const b = e.data as ErrorBody;
  return { ok: false, callId: id, error: new SkiffError(b.code, b.detail, b.errors ? { errors: b.errors } : {}) };
}

// ---- placement notice (scheduler → the gateway, the answer to skiff.invoke) ----

/**
 * Tells the asker which node to send its call to, in headers with an empty body. A scheduler
 * that cannot place the call answers with an error result instead.
 */
export function encodePlacedHeaders(callId: string, nodeId: string): MsgHdrs {
  return new WireHeaders().add(H.type, 'placed').add(H.version, String(PROTOCOL_VERSION)).add(H.callId, callId).add(H.node, nodeId);
}

const placedHeaders = z.object({
  [H.type]: z.literal('placed'),
  [H.version]: z.literal(String(PROTOCOL_VERSION)),
  [H.callId]: callId,
  [H.node]: z.string().regex(NODE_ID_PATTERN, 'must match [A-Za-z0-9_-]{1,64}'),
});

/** A placement notice's call and node; undefined when the message is not a notice (a result). */
export function decodePlaced(h: MsgHdrs | undefined): { callId: string; nodeId: string } | undefined {
  const record = headerRecord(h);
  if (record[H.type] !== 'placed') return undefined;
  const parsed = placedHeaders.safeParse(record);
  if (!parsed.success) throw badMessage('placement notice', parsed.error);
  return { callId: parsed.data[H.callId], nodeId: parsed.data[H.node] };
}

// ---- control messages (JSON) ----

const nodeId = z.string().regex(NODE_ID_PATTERN, 'must match [A-Za-z0-9_-]{1,64}');

export const heartbeatSchema = z.object({
  type: z.literal('heartbeat'),
  version: z.literal(PROTOCOL_VERSION),
  nodeId,
  /** Sender's clock, ms since the epoch (informational; receivers use their own clock). */
  sentAt: z.number().int().nonnegative(),
  /** How many invocations this node runs at once, and how many it runs now. */
  slots: z.number().int().nonnegative(),
  inflight: z.number().int().nonnegative(),
  /** Heartbeat period the sender promises, so receivers know when it is overdue. */
  intervalMs: z.number().int().positive(),
  /**
   * The node has left (it takes no new work) and still runs `inflight` calls: it goes on beating
   * until they are done, so a node killed while draining is seen lost and its calls fail at once.
   * Its last heartbeat says `inflight: 0`.
   */
  draining: z.boolean().default(false),
  /** Manifest digests of the images unpacked on the node (placement prefers them). */
  images: z.array(digest).max(100_000).default([]),
  /**
   * Function versions with instances on the node: `idle` ones, which placement prefers most, and
   * `instances`, all of them starting, idle or busy, which the gateways compare with minInstances.
   * Workers from before `instances` send only versions with idle ones; read `idle` as the count.
   */
  warm: z
    .array(
      z.object({
        fn: fnName,
        version: z.number().int().positive(),
        idle: z.number().int().nonnegative(),
        instances: z.number().int().nonnegative().optional(),
      }),
    )
    .max(100_000)
    .default([]),
  /**
   * The node's stem cells (node runtime containers started before their function is known):
   * how many wait for a function, how many are still booting, and how many the node keeps.
   * Absent from workers that keep none.
   */
  stems: z
    .object({
      waiting: z.number().int().nonnegative(),
      starting: z.number().int().nonnegative(),
      target: z.number().int().nonnegative(),
    })
    .optional(),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

export const leaveSchema = z.object({
  type: z.literal('leave'),
  version: z.literal(PROTOCOL_VERSION),
  nodeId,
});
export type Leave = z.infer<typeof leaveSchema>;

export const fnChangedSchema = z.object({
  type: z.literal('fn-changed'),
  version: z.literal(PROTOCOL_VERSION),
  fn: fnName,
  /** The version now current, or null when the function was deleted. */
  fnVersion: z.number().int().positive().nullable(),
});
export type FnChanged = z.infer<typeof fnChangedSchema>;

export const nodeEntrySchema = z.object({
  nodeId,
  lastSeen: z.number().int().nonnegative(),
  slots: z.number().int().nonnegative(),
  inflight: z.number().int().nonnegative(),
});
export type NodeEntry = z.infer<typeof nodeEntrySchema>;

export const nodeTableSchema = z.object({
  type: z.literal('nodes'),
  version: z.literal(PROTOCOL_VERSION),
  nodes: z.array(nodeEntrySchema),
});
export type NodeTableMessage = z.infer<typeof nodeTableSchema>;

/** A scheduler's or worker's answer to a health request (SUBJECTS.health). */
export const healthAnswerSchema = z.object({
  type: z.literal('health'),
  version: z.literal(PROTOCOL_VERSION),
  role: z.enum(['scheduler', 'worker']),
  /** A worker's node id; a scheduler's host name and process id. */
  id: z.string().min(1).max(256),
  /** What does not work there now, in words; empty when all does. */
  problems: z.array(z.string().max(512)).max(16),
});
export type HealthAnswer = z.infer<typeof healthAnswerSchema>;

/** Checks a control message against its schema (defaults filled in) and serialises it. */
export function encodeJson<S extends z.ZodType>(schema: S, value: z.input<S>): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(schema.parse(value)));
}

export function decodeJson<T>(schema: z.ZodType<T>, data: Uint8Array, what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(data));
  } catch (cause) {
    throw new SkiffError('SKIFF_BAD_MESSAGE', `${what} is not JSON`, { cause });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw badMessage(what, parsed.error);
  return parsed.data;
}
