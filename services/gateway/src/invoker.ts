import type { Msg, MsgHdrs } from '@nats-io/transport-node';
import { SUBJECTS, SkiffError, decodePlaced, decodeResult, encodeInvocation, type Invocation } from '@skiff/contracts';
import { placementReason, type NodeDirectory } from '@skiff/placement';
import { type Logger } from '@skiff/service-kit';
import { contextFrom, tracer } from '@skiff/telemetry';
import type { Messaging } from './messaging.js';
import { NoRespondersError, Replies, ReplyTimeoutError } from './replies.js';

const EMPTY = new Uint8Array(0);
const TRACER = tracer('@skiff/gateway');

export interface InvokeResult {
  body: Uint8Array;
  contentType: string | undefined;
}

/**
 * Sends synchronous invocations. The gateway places them itself, with the same placement as
 * the schedulers over its own copy of the node table, and sends each straight to the chosen
 * worker, which answers to this request's inbox: one NATS round trip. Until the gateway has
 * heard from any worker it asks a scheduler where to send the call instead. The only timeout
 * is what is left of the deadline, but a call never waits for it on a node that is lost (silent
 * or gone from NATS) or while NATS is down: it fails at once with a retryable 503.
 */
export class Invoker {
  private readonly replies: Replies;

  constructor(
    private readonly messaging: Messaging,
    private readonly nodes: NodeDirectory,
    private readonly log: Logger,
  ) {
    this.replies = new Replies(messaging.nc);
    nodes.watch((nodeId, change) => {
      if (change === 'lost') this.failOn(nodeId, 'was running on');
    });
    messaging.onLost(() => {
      const failed = this.replies.failAll(() => new SkiffError('SKIFF_NATS_UNAVAILABLE', 'the gateway lost its NATS connection while the call was in flight; try again shortly'));
      if (failed > 0) log.warn({ failed }, 'calls in flight failed: NATS connection lost');
    });
  }

  /** Fails the calls waiting on a lost node: their replies cannot come any more. */
  private failOn(nodeId: string, how: string): void {
    const failed = this.replies.failOn(nodeId, () => new SkiffError('SKIFF_WORKER_LOST', `the call ${how} worker node "${nodeId}", which was lost; try again`));
    if (failed > 0) this.log.warn({ nodeId, failed }, 'calls in flight failed: their node was lost');
  }

  close(): void {
    this.replies.close();
  }

  async invoke(inv: Invocation, body: Uint8Array): Promise<InvokeResult> {
    if (!this.messaging.connected) throw new SkiffError('SKIFF_NATS_UNAVAILABLE', 'the gateway is not connected to NATS; try again shortly');
    const target = { fn: inv.fn, fnVersion: inv.fnVersion, image: inv.image };
    const headers = encodeInvocation(inv);
    const place = async (): Promise<string> => {
      // The placement span, a child of the request's (the invocation carries its context).
      const span = TRACER.startSpan('place', { attributes: { 'faas.name': inv.fn, 'faas.version': String(inv.fnVersion) } }, contextFrom(inv));
      try {
        const node = this.nodes.pick(target);
        span.setAttribute('skiff.placement.reason', node ? placementReason(node, target) : 'asked a scheduler');
        const nodeId = node?.nodeId ?? (await this.askScheduler(inv, headers));
        span.setAttribute('skiff.node.id', nodeId);
        return nodeId;
      } catch (err) {
        span.setAttribute('skiff.placement.reason', 'none');
        throw err;
      } finally {
        span.end();
      }
    };
    const send = (nodeId: string): Promise<Msg> => {
      this.nodes.placed(nodeId, target);
      return this.replies.request(SUBJECTS.nodeInvoke(nodeId), body, headers, inv.deadline, nodeId);
    };
    const nodeId = await place();
    let reply: Msg;
    try {
      reply = await send(nodeId);
    } catch (err) {
      if (!(err instanceof NoRespondersError)) throw requestFailure(err, inv, 'SKIFF_NO_WORKER');
      // Nothing listens on the node's subject: it stopped or died before it took this call,
      // so the call never started and placing it once more cannot run it twice.
      this.nodes.forget(nodeId, 'nothing listens on its subject');
      this.log.info({ callId: inv.callId, fn: inv.fn, nodeId }, 'worker gone before the call started; placing it again');
      reply = await send(await place()).catch((e: unknown) => Promise.reject(requestFailure(e, inv, 'SKIFF_NO_WORKER')));
    }
    return this.decode(inv, reply);
  }

  /** The node a scheduler places the call on, for a gateway that has heard of no live node. */
  private async askScheduler(inv: Invocation, headers: MsgHdrs): Promise<string> {
    const answer = await this.replies.request(SUBJECTS.invoke, EMPTY, headers, inv.deadline).catch((e: unknown) => Promise.reject(requestFailure(e, inv, 'SKIFF_NO_SCHEDULER')));
    const placed = decodePlaced(answer.headers);
    if (placed?.callId === inv.callId) return placed.nodeId;
    if (placed) throw new SkiffError('SKIFF_BAD_MESSAGE', `placement for call ${placed.callId} arrived for call ${inv.callId}`);
    this.decode(inv, answer); // an error result: the scheduler could not place it
    throw new SkiffError('SKIFF_BAD_MESSAGE', 'a scheduler answered a placement request with a result');
  }

  private decode(inv: Invocation, reply: Msg): InvokeResult {
    const result = decodeResult(reply.headers, reply.data);
    if (result.callId !== inv.callId) {
      throw new SkiffError('SKIFF_BAD_MESSAGE', `result for call ${result.callId} arrived for call ${inv.callId}`);
    }
    if (!result.ok) throw result.error;
    return { body: result.body, contentType: result.contentType };
  }
}

/** What a failed request means for the caller; `noResponders` names who was missing. */
function requestFailure(err: unknown, inv: Invocation, noResponders: 'SKIFF_NO_SCHEDULER' | 'SKIFF_NO_WORKER'): SkiffError {
  if (err instanceof SkiffError) return err;
  if (err instanceof NoRespondersError) {
    return noResponders === 'SKIFF_NO_SCHEDULER'
      ? new SkiffError(noResponders, 'no scheduler is listening for invocations', { cause: err })
      : new SkiffError(noResponders, 'no worker node is available to run the function', { cause: err });
  }
  if (err instanceof ReplyTimeoutError) {
    return new SkiffError('SKIFF_DEADLINE_EXCEEDED', `function "${inv.fn}" did not answer before its deadline`, { cause: err });
  }
  return new SkiffError('SKIFF_NATS_UNAVAILABLE', `could not send the invocation: ${(err as Error).message}`, { cause: err });
}
