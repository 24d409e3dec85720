import { SUBJECTS, encodeInvocation, newCallId, type Logger, type NodeDirectory } from '@skiff/contracts';
import { invocationFor } from './invocation.js';
import type { Messaging } from './messaging.js';
import type { FunctionRecord } from './registry.js';

/**
 * Starts a stream function's minInstances when a version is deployed, on the node placement
 * picks for it, rather than waiting for the first invocation to pay the cold start. Best
 * effort: without a known node or NATS, the first invocation starts them instead.
 */
export class Prewarmer {
  constructor(
    private readonly messaging: Messaging,
    private readonly nodes: NodeDirectory,
    private readonly log: Logger,
  ) {}

  warm(fn: FunctionRecord): void {
    if (fn.mode !== 'stream' || fn.minInstances === 0 || !this.messaging.connected) return;
    const inv = invocationFor(fn, newCallId());
    const node = this.nodes.pick({ fn: inv.fn, fnVersion: inv.fnVersion, image: inv.image });
    if (!node) return this.log.info({ fn: fn.name, version: fn.version }, 'no worker known yet; minInstances start with the first invocation');
    this.messaging.nc.publish(SUBJECTS.nodeWarm(node.nodeId), new Uint8Array(0), { headers: encodeInvocation(inv) });
    this.log.info({ fn: fn.name, version: fn.version, nodeId: node.nodeId, minInstances: fn.minInstances }, 'asked a node to start the minimum of instances');
  }
}
