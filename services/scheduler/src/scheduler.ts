import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  PROTOCOL_VERSION,
  QUEUE_GROUPS,
  SUBJECTS,
  SkiffError,
  decodeInvocation,
  decodeJson,
  encodeError,
  encodeJson,
  encodeResultHeaders,
  heartbeatSchema,
  leaveSchema,
  nodeTableSchema,
  remainingMs,
  type Logger,
} from '@skiff/contracts';
import { pickNode, toEntries, withHeartbeat, withPlaced, withoutExpired, withoutNode, type NodeTable } from './placement.js';
import type { SchedulerConfig } from './config.js';

/**
 * Keeps the node table from worker heartbeats and places each invocation on a node. The
 * invocation is forwarded with the gateway's reply subject kept, so the result skips this hop.
 */
export class Scheduler {
  private table: NodeTable = new Map();
  private readonly subs: Subscription[] = [];
  private readonly loops: Promise<void>[] = [];
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly config: SchedulerConfig,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.serve(this.nc.subscribe(SUBJECTS.heartbeat), (m) => this.onHeartbeat(m));
    this.serve(this.nc.subscribe(SUBJECTS.leave), (m) => this.onLeave(m));
    this.serve(this.nc.subscribe(SUBJECTS.invoke, { queue: QUEUE_GROUPS.schedulers }), (m) => this.onInvoke(m));
    this.serve(this.nc.subscribe(SUBJECTS.nodesList, { queue: QUEUE_GROUPS.schedulers }), (m) => this.onNodesList(m));
    this.sweeper = setInterval(() => this.sweep(), 250);
    this.sweeper.unref();
  }

  /** Current node table (live nodes only). */
  nodes(now = Date.now()): NodeTable {
    this.table = withoutExpired(this.table, now, this.config.missedHeartbeats);
    return this.table;
  }

  private serve(sub: Subscription, handle: (m: Msg) => void): void {
    this.subs.push(sub);
    this.loops.push(
      (async () => {
        for await (const m of sub) {
          try {
            handle(m);
          } catch (err) {
            this.log.warn({ err, subject: m.subject }, 'message rejected');
          }
        }
      })(),
    );
  }

  private sweep(): void {
    const before = this.table.size;
    const now = Date.now();
    const live = withoutExpired(this.table, now, this.config.missedHeartbeats);
    if (live.size !== before) {
      for (const id of this.table.keys()) if (!live.has(id)) this.log.warn({ nodeId: id }, 'node missed its heartbeats; removed');
      this.table = live;
    }
  }

  private onHeartbeat(m: Msg): void {
    const hb = decodeJson(heartbeatSchema, m.data, 'heartbeat');
    if (!this.table.has(hb.nodeId)) this.log.info({ nodeId: hb.nodeId, slots: hb.slots }, 'node joined');
    this.table = withHeartbeat(this.table, hb, Date.now());
  }

  private onLeave(m: Msg): void {
    const leave = decodeJson(leaveSchema, m.data, 'leave');
    this.table = withoutNode(this.table, leave.nodeId);
    this.log.info({ nodeId: leave.nodeId }, 'node left');
  }

  private onNodesList(m: Msg): void {
    m.respond(encodeJson(nodeTableSchema, { type: 'nodes', version: PROTOCOL_VERSION, nodes: toEntries(this.nodes()) }));
  }

  private onInvoke(m: Msg): void {
    let callId = 'unknown';
    try {
      const inv = decodeInvocation(m.headers);
      callId = inv.callId;
      if (remainingMs(inv.deadline) === 0) throw new SkiffError('SKIFF_DEADLINE_EXCEEDED', 'the deadline passed before the invocation was placed');
      const target = { fn: inv.fn, fnVersion: inv.fnVersion, image: inv.image };
      const node = pickNode(this.table, Date.now(), this.config.missedHeartbeats, target);
      if (!node) throw new SkiffError('SKIFF_NO_WORKER', 'no worker node is available to run the function');
      this.table = withPlaced(this.table, node.nodeId, target);
      this.nc.publish(SUBJECTS.nodeInvoke(node.nodeId), m.data, { headers: m.headers!, ...(m.reply ? { reply: m.reply } : {}) });
      this.log.debug({ callId, fn: inv.fn, nodeId: node.nodeId }, 'placed');
    } catch (err) {
      const e = err instanceof SkiffError ? err : new SkiffError('SKIFF_INTERNAL', 'placement failed', { cause: err });
      this.log.warn({ callId, code: e.code, err: e.message }, 'invocation not placed');
      if (m.reply) m.respond(encodeError(e), { headers: encodeResultHeaders(callId === 'unknown' ? '0' : callId, false) });
    }
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    for (const s of this.subs) await s.drain();
    await Promise.all(this.loops);
  }
}
