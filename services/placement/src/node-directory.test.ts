import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Msg, NatsConnection } from '@nats-io/nats-core';
import { PROTOCOL_VERSION, SUBJECTS, encodeJson, heartbeatSchema, leaveSchema } from '@skiff/contracts';
import { createLogger } from '@skiff/service-kit';
import { NodeDirectory, missedHeartbeatsFrom, type NodeChange } from './node-directory.js';

const INTERVAL = 200;

/** A NATS connection stubbed at its boundary: messages are handed to the directory's subscriptions. */
function stubConnection() {
  const handlers = new Map<string, (err: unknown, m: Msg) => void>();
  const nc = {
    subscribe: (subject: string, opts: { callback: (err: unknown, m: Msg) => void }) => {
      handlers.set(subject, opts.callback);
      return { unsubscribe: () => undefined };
    },
    publish: () => undefined,
  } as unknown as NatsConnection;
  const deliver = (subject: string, data: Uint8Array) => handlers.get(subject)!(null, { subject, data } as unknown as Msg);
  return { nc, deliver };
}

describe('NodeDirectory', () => {
  let deliver: (subject: string, data: Uint8Array) => void;
  let directory: NodeDirectory;
  let changes: [string, NodeChange][];
  const beat = (nodeId: string, extra: { draining?: boolean; inflight?: number } = {}) =>
    deliver(
      SUBJECTS.heartbeat,
      encodeJson(heartbeatSchema, { type: 'heartbeat', version: PROTOCOL_VERSION, nodeId, sentAt: 0, slots: 4, inflight: 0, intervalMs: INTERVAL, images: [], warm: [], ...extra }),
    );
  const leave = (nodeId: string) => deliver(SUBJECTS.leave, encodeJson(leaveSchema, { type: 'leave', version: PROTOCOL_VERSION, nodeId }));

  beforeEach(() => {
    vi.useFakeTimers();
    const stub = stubConnection();
    deliver = stub.deliver;
    directory = new NodeDirectory(stub.nc, { missedHeartbeats: 2, log: createLogger('test', 'silent') });
    changes = [];
    directory.watch((id, change) => changes.push([id, change]));
    directory.start();
  });
  afterEach(() => {
    directory.stop();
    vi.useRealTimers();
  });

  it('loses a node two heartbeat periods after its last beat', () => {
    beat('node-a');
    vi.advanceTimersByTime(2 * INTERVAL);
    expect(changes).toEqual([['node-a', 'joined']]);
    vi.advanceTimersByTime(500);
    expect(changes).toEqual([['node-a', 'joined'], ['node-a', 'lost']]);
  });

  it('does not count a gap of its own against the nodes: a sweep held past a second skips its turn', () => {
    beat('node-a');
    vi.advanceTimersByTime(250);
    // The event loop was held for three seconds; the node's heartbeats are waiting, unread.
    vi.setSystemTime(Date.now() + 3000);
    vi.advanceTimersByTime(250); // the late sweep
    beat('node-a'); // read once the loop is free again
    vi.advanceTimersByTime(250);
    expect(changes).toEqual([['node-a', 'joined']]);
    expect([...directory.nodes().keys()]).toEqual(['node-a']);
  });

  it('watches a node that left until its draining heartbeats stop, then loses it', () => {
    beat('node-a');
    leave('node-a');
    expect(directory.nodes().size).toBe(0);
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(INTERVAL);
      beat('node-a', { draining: true, inflight: 1 });
    }
    expect(changes).toEqual([['node-a', 'joined'], ['node-a', 'left']]);
    vi.advanceTimersByTime(3 * INTERVAL + 250);
    expect(changes).toEqual([['node-a', 'joined'], ['node-a', 'left'], ['node-a', 'lost']]);
  });

  it('loses a node killed after its leave message, before any draining heartbeat', () => {
    beat('node-a');
    leave('node-a');
    vi.advanceTimersByTime(3 * INTERVAL + 250);
    expect(changes).toEqual([['node-a', 'joined'], ['node-a', 'left'], ['node-a', 'lost']]);
  });

  it('forgets a draining node whose last heartbeat says it has nothing in flight', () => {
    beat('node-a');
    leave('node-a');
    beat('node-a', { draining: true, inflight: 0 });
    vi.advanceTimersByTime(10 * INTERVAL);
    expect(changes).toEqual([['node-a', 'joined'], ['node-a', 'left']]);
  });

  it('keeps a draining heartbeat from bringing the node back into placement', () => {
    beat('node-a', { draining: true, inflight: 2 });
    expect(directory.nodes().size).toBe(0);
    expect(changes).toEqual([]);
  });
});

describe('missedHeartbeatsFrom', () => {
  it('defaults to two and takes 1 to 100', () => {
    expect(missedHeartbeatsFrom(undefined)).toBe(2);
    expect(missedHeartbeatsFrom('')).toBe(2);
    expect(missedHeartbeatsFrom('5')).toBe(5);
    expect(() => missedHeartbeatsFrom('0')).toThrow(/1 to 100/);
    expect(() => missedHeartbeatsFrom('2.5')).toThrow(/1 to 100/);
  });
});
