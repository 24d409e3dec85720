/**
 * The `stream` runtime protocol's messages (docs/runtime-protocol.md). Each frame carries one
 * JSON header, parsed with these schemas on receipt; the body travels beside it as raw bytes.
 * Schemas are built once, here, and unknown header fields are dropped (a newer peer may add
 * optional fields without a version bump).
 */
import { TRACEPARENT_PATTERN } from '@skiff/contracts';
import { z } from 'zod';

/** Version byte of every frame, and the `protocol` a runtime announces in `ready`. */
export const STREAM_PROTOCOL_VERSION = 1;

/** Fixed prefix: magic "SK", version, flags (0), header length u32 BE, body length u32 BE. */
export const FRAME_MAGIC_0 = 0x53; // 'S'
export const FRAME_MAGIC_1 = 0x4b; // 'K'
export const FRAME_PREFIX_BYTES = 12;
export const MAX_HEADER_BYTES = 64 * 1024;
/** Body limit when the worker sets none (it tells the runtime in SKIFF_MAX_BODY_BYTES). */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
/** Largest body any peer may announce: the u32 length field, less one. */
export const MAX_BODY_LIMIT = 0xffff_ffff;

/** Error codes a runtime sends in `error` frames (beside any others, which mean the same as FN_ERROR). */
export const RUNTIME_ERROR_CODES = ['FN_ERROR', 'BAD_INPUT', 'BAD_OUTPUT', 'OUTPUT_TOO_LARGE', 'SHUTTING_DOWN'] as const;
export type RuntimeErrorCode = (typeof RUNTIME_ERROR_CODES)[number];

const id = z.string().min(1).max(128);
const contentType = z.string().min(1).max(256);
const traceparent = z.string().regex(TRACEPARENT_PATTERN, 'must be a W3C traceparent');

// ---- runtime → worker ----

export const readyMessage = z.object({
  type: z.literal('ready'),
  /** The protocol version the runtime speaks (STREAM_PROTOCOL_VERSION). */
  protocol: z.number().int().positive(),
  /** The runtime's name, e.g. "node". */
  runtime: z.string().min(1).max(64),
  /** Its version, e.g. the Node.js version; informational. */
  runtimeVersion: z.string().max(64).optional(),
});

/**
 * A stem cell's first frame: the runtime has booted without a function and waits for `load`
 * (docs/runtime-protocol.md, "Stem cells"). Same fields as `ready`.
 */
export const stemMessage = readyMessage.extend({ type: z.literal('stem') });

export const resultMessage = z.object({
  type: z.literal('result'),
  id,
  /** Absent when the body is empty (the function returned nothing). */
  contentType: contentType.optional(),
});

export const errorMessage = z.object({
  type: z.literal('error'),
  id,
  code: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'must be an upper-case code'),
  message: z.string().max(16 * 1024),
  stack: z.string().max(32 * 1024).optional(),
});

/** Any frame a runtime sends. */
export const runtimeMessage = z.discriminatedUnion('type', [readyMessage, stemMessage, resultMessage, errorMessage]);

// ---- worker → runtime ----

export const invokeMessage = z.object({
  type: z.literal('invoke'),
  /** Unique among the invocations in flight on this connection; the reply carries it back. */
  id,
  /** Absolute deadline, ms since the epoch. */
  deadline: z.number().int().nonnegative(),
  /** The platform's call id, for the function's logs (`context.invocationId`); defaults to `id`. */
  callId: z.string().min(1).max(128).optional(),
  traceparent: traceparent.optional(),
  tracestate: z.string().max(512).optional(),
  /** Media type of the body; absent means raw bytes. */
  contentType: contentType.optional(),
  /** Async invocations: which attempt this is (1, 2, …) and the caller's Idempotency-Key. */
  attempt: z.number().int().positive().optional(),
  idempotencyKey: z.string().min(1).max(256).optional(),
  /** Subject triggers: the NATS message that started the call (its subject, an id, its headers). */
  event: z
    .object({
      subject: z.string().min(1).max(256),
      id: z.string().min(1).max(128),
      headers: z.record(z.string(), z.array(z.string())),
    })
    .optional(),
});

export const shutdownMessage = z.object({ type: z.literal('shutdown') });

/** To a stem cell, once: the function's whole environment and its working directory; `ready` follows. */
export const loadMessage = z.object({
  type: z.literal('load'),
  env: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*=/, 'must be NAME=value')).max(4096),
  cwd: z.string().startsWith('/').max(4096),
});

/** Any frame a worker sends. */
export const workerMessage = z.discriminatedUnion('type', [invokeMessage, shutdownMessage, loadMessage]);

export type ReadyMessage = z.infer<typeof readyMessage>;
export type StemMessage = z.infer<typeof stemMessage>;
export type LoadMessage = z.infer<typeof loadMessage>;
export type ResultMessage = z.infer<typeof resultMessage>;
export type ErrorMessage = z.infer<typeof errorMessage>;
export type RuntimeMessage = z.infer<typeof runtimeMessage>;
export type InvokeMessage = z.infer<typeof invokeMessage>;
export type ShutdownMessage = z.infer<typeof shutdownMessage>;
export type WorkerMessage = z.infer<typeof workerMessage>;
