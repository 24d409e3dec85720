import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { SUBJECTS, SkiffError } from '@skiff/contracts';
import type { NodeDirectory } from '@skiff/placement';

/** How long a worker's answer is waited for past the call's own timeout. */
const ANSWER_GRACE_MS = 2000;

/** Nothing listened on the node's subject: the call never started, so it may be placed again. */
export class NotStarted extends Error {
  override readonly name = 'NotStarted';
}

export interface NodeAnswer {
  headers?: MsgHdrs | undefined;
  data: Uint8Array;
}

/**
 * The scheduler's calls to worker nodes (async invocations and triggered ones), each waiting on
 * its node: a call fails at once when the node directory loses that node (SKIFF_WORKER_LOST) or
 * when this connection drops (SKIFF_NATS_UNAVAILABLE: a reply published meanwhile is lost), not
 * at its deadline.
 */
export class NodeCalls {
  private readonly waiting = new Map<string, Set<(err: Error) => void>>();

  constructor(
    private readonly nc: NatsConnection,
    directory: NodeDirectory,
  ) {
    directory.watch((nodeId, change) => {
      if (change === 'lost') this.failOn(nodeId, () => new SkiffError('SKIFF_WORKER_LOST', `worker node "${nodeId}" was lost during the call`));
    });
    void this.failOnDisconnect();
  }

  /**
   * Sends the call to the node; resolves with its answer. Rejects with NotStarted, a SkiffError
   * as above, or SKIFF_DEADLINE_EXCEEDED when no answer came within the call's `timeoutMs` (and a
   * little grace, the worker stopping it at its deadline).
   */
  call(nodeId: string, headers: MsgHdrs, body: Uint8Array, timeoutMs: number): Promise<NodeAnswer> {
    return new Promise((resolve, reject) => {
      const rejects = this.waiting.get(nodeId) ?? new Set();
      this.waiting.set(nodeId, rejects);
      const done = () => {
        rejects.delete(reject);
        if (rejects.size === 0) this.waiting.delete(nodeId);
      };
      rejects.add(reject);
      this.nc.request(SUBJECTS.nodeInvoke(nodeId), body, { headers, timeout: timeoutMs + ANSWER_GRACE_MS }).then(
        (answer) => (done(), resolve(answer)),
        (err: Error) => {
          done();
          if (/no responders/i.test(err.message) || (err as { code?: string }).code === '503') reject(new NotStarted(`nothing listens on worker node "${nodeId}"`));
          else reject(new SkiffError('SKIFF_DEADLINE_EXCEEDED', `no answer from worker node "${nodeId}" within the deadline`, { cause: err }));
        },
      );
    });
  }

  private failOn(nodeId: string, error: () => Error): void {
    for (const reject of this.waiting.get(nodeId) ?? []) reject(error());
  }

  private async failOnDisconnect(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type !== 'disconnect') continue;
      for (const nodeId of this.waiting.keys()) this.failOn(nodeId, () => new SkiffError('SKIFF_NATS_UNAVAILABLE', 'the scheduler lost its NATS connection during the call'));
    }
  }
}
