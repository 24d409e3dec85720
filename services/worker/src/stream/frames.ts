/**
 * Frame codec of the `stream` runtime protocol (docs/runtime-protocol.md):
 *
 *   0      2        3      4               8               12
 *   +------+--------+------+---------------+---------------+------------------+-------------+
 *   | "SK" | version| flags| header len u32| body len u32  | header (JSON)    | body (raw)  |
 *   +------+--------+------+---------------+---------------+------------------+-------------+
 *
 * The encoder writes the prefix and the header into one buffer and leaves the body where it
 * is (or copies it in when it is small, to save a writev). The decoder is incremental: it
 * keeps the chunks it was fed, copies only when a frame spans chunks, and hands out bodies as
 * views into the received bytes.
 */
import type { z } from 'zod';
import {
  DEFAULT_MAX_BODY_BYTES,
  FRAME_MAGIC_0,
  FRAME_MAGIC_1,
  FRAME_PREFIX_BYTES,
  MAX_BODY_LIMIT,
  MAX_HEADER_BYTES,
  STREAM_PROTOCOL_VERSION,
} from './messages.js';

export type FrameErrorCode = 'BAD_MAGIC' | 'BAD_VERSION' | 'BAD_FLAGS' | 'HEADER_TOO_LARGE' | 'BODY_TOO_LARGE' | 'BAD_HEADER';

/** Malformed or oversized input: the connection it came from cannot be trusted any more. */
export class FrameError extends Error {
  override readonly name = 'FrameError';
  constructor(
    readonly code: FrameErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface Frame<M> {
  header: M;
  /** A view into the received bytes (no copy); empty when the frame has no body. */
  body: Buffer;
}

export interface FrameLimits {
  /** Largest body accepted (default 16 MiB). */
  maxBodyBytes?: number;
  /** Largest header accepted (default and ceiling 64 KiB). */
  maxHeaderBytes?: number;
}

/** Bodies up to this size are copied next to the header so a frame is one buffer, one write. */
const INLINE_BODY_BYTES = 4096;
const EMPTY = Buffer.alloc(0);

/**
 * Encodes one frame as one or two buffers, to be written in order (cork/uncork, or writev).
 * Throws FrameError when the header or the body is over its limit.
 */
export function encodeFrame(header: object, body: Uint8Array = EMPTY, maxBodyBytes = MAX_BODY_LIMIT): Buffer[] {
  const json = JSON.stringify(header);
  const headerLen = Buffer.byteLength(json, 'utf8');
  if (headerLen > MAX_HEADER_BYTES) throw new FrameError('HEADER_TOO_LARGE', `frame header of ${headerLen} bytes is over the limit of ${MAX_HEADER_BYTES}`);
  const bodyLen = body.byteLength;
  if (bodyLen > maxBodyBytes) throw new FrameError('BODY_TOO_LARGE', `frame body of ${bodyLen} bytes is over the limit of ${maxBodyBytes}`);
  const inline = bodyLen <= INLINE_BODY_BYTES;
  const head = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + headerLen + (inline ? bodyLen : 0));
  head[0] = FRAME_MAGIC_0;
  head[1] = FRAME_MAGIC_1;
  head[2] = STREAM_PROTOCOL_VERSION;
  head[3] = 0;
  head.writeUInt32BE(headerLen, 4);
  head.writeUInt32BE(bodyLen, 8);
  head.write(json, FRAME_PREFIX_BYTES, headerLen, 'utf8');
  if (bodyLen === 0) return [head];
  if (inline) {
    head.set(body, FRAME_PREFIX_BYTES + headerLen);
    return [head];
  }
  return [head, Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, bodyLen)];
}

/**
 * Incremental decoder: feed it chunks as they arrive, get whole frames back. The header is
 * parsed with `schema` (built once by the caller). After it throws, it throws the same error
 * again: the stream is out of sync and must be closed.
 */
export class FrameDecoder<M> {
  private parts: Buffer[] = [];
  private buffered = 0;
  /** Bytes needed for the next step: the prefix, or (once it is read) the whole frame. */
  private need = FRAME_PREFIX_BYTES;
  private headerLen = -1;
  private failure: FrameError | undefined;
  private readonly maxBody: number;
  private readonly maxHeader: number;

  constructor(
    private readonly schema: z.ZodType<M>,
    limits: FrameLimits = {},
  ) {
    this.maxBody = limits.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.maxHeader = Math.min(limits.maxHeaderBytes ?? MAX_HEADER_BYTES, MAX_HEADER_BYTES);
  }

  /** Bytes received but not yet returned as frames. */
  get pending(): number {
    return this.buffered;
  }

  push(chunk: Buffer): Frame<M>[] {
    if (this.failure) throw this.failure;
    const out: Frame<M>[] = [];
    if (chunk.length === 0) return out;
    this.parts.push(chunk);
    this.buffered += chunk.length;
    try {
      while (this.buffered >= this.need) {
        let buf = this.parts[0]!;
        if (buf.length < this.need) {
          // The step spans chunks: join what is buffered, once.
          buf = Buffer.concat(this.parts, this.buffered);
          this.parts = [buf];
        }
        if (this.headerLen < 0) {
          this.readPrefix(buf);
          continue;
        }
        const headerEnd = FRAME_PREFIX_BYTES + this.headerLen;
        const end = this.need;
        out.push({ header: this.parseHeader(buf, headerEnd), body: end === headerEnd ? EMPTY : buf.subarray(headerEnd, end) });
        if (buf.length === end) this.parts.shift();
        else this.parts[0] = buf.subarray(end);
        this.buffered -= end;
        this.need = FRAME_PREFIX_BYTES;
        this.headerLen = -1;
      }
    } catch (err) {
      this.failure = err instanceof FrameError ? err : new FrameError('BAD_HEADER', String(err), { cause: err });
      this.parts = [];
      this.buffered = 0;
      throw this.failure;
    }
    return out;
  }

  private readPrefix(buf: Buffer): void {
    if (buf[0] !== FRAME_MAGIC_0 || buf[1] !== FRAME_MAGIC_1) {
      throw new FrameError('BAD_MAGIC', `not a frame: starts with 0x${buf.subarray(0, 2).toString('hex')}`);
    }
    if (buf[2] !== STREAM_PROTOCOL_VERSION) throw new FrameError('BAD_VERSION', `frame version ${buf[2]} is not ${STREAM_PROTOCOL_VERSION}`);
    if (buf[3] !== 0) throw new FrameError('BAD_FLAGS', `frame flags 0x${buf[3]!.toString(16)} are not 0`);
    const headerLen = buf.readUInt32BE(4);
    const bodyLen = buf.readUInt32BE(8);
    if (headerLen === 0) throw new FrameError('BAD_HEADER', 'frame header is empty');
    if (headerLen > this.maxHeader) throw new FrameError('HEADER_TOO_LARGE', `frame header of ${headerLen} bytes is over the limit of ${this.maxHeader}`);
    if (bodyLen > this.maxBody) throw new FrameError('BODY_TOO_LARGE', `frame body of ${bodyLen} bytes is over the limit of ${this.maxBody}`);
    this.headerLen = headerLen;
    this.need = FRAME_PREFIX_BYTES + headerLen + bodyLen;
  }

  private parseHeader(buf: Buffer, headerEnd: number): M {
    let json: unknown;
    try {
      json = JSON.parse(buf.toString('utf8', FRAME_PREFIX_BYTES, headerEnd));
    } catch (cause) {
      throw new FrameError('BAD_HEADER', 'frame header is not JSON', { cause });
    }
    const parsed = this.schema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? `${issue.path.join('.')}: ` : '';
      throw new FrameError('BAD_HEADER', `frame header rejected: ${where}${issue?.message ?? 'invalid'}`, { cause: parsed.error });
    }
    return parsed.data;
  }
}
