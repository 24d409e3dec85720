import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { SETTING_NAMES, SUBJECTS, encodeInvocation, newCallId, type Heartbeat, type RunSettings } from '@skiff/contracts';
import { Platform, REPO, waitUntil, type NatsServer } from '@skiff/testkit';

const COUNTER = join(REPO, 'test/fixtures/functions/counter');

/** Every heartbeat on the bus, in order, for looking back and waiting ahead. */
class Heartbeats {
  readonly seen: Heartbeat[] = [];
  private constructor(readonly nc: NatsConnection) {}

  /** As a gateway: it hears heartbeats and may ask a node for warm instances. */
  static async follow(nats: NatsServer): Promise<Heartbeats> {
    const h = new Heartbeats(await nats.connect('gateway'));
    h.nc.subscribe(SUBJECTS.heartbeat, {
      callback: (_err, m) => {
        h.seen.push(m.json<Heartbeat>());
      },
    });
    await h.nc.flush();
    return h;
  }

  from(nodeId: string): Heartbeat[] {
    return this.seen.filter((hb) => hb.nodeId === nodeId);
  }

  /** Waits for a heartbeat from the node with an entry for the version that passes `test`. */
  async waitFor(nodeId: string, fn: string, version: number, test: (w: Heartbeat['warm'][number]) => boolean, what: string): Promise<void> {
    await waitUntil(async () => this.from(nodeId).some((hb) => hb.warm.some((w) => w.fn === fn && w.version === version && test(w))), what, 60_000);
  }

  close(): Promise<void> {
    return this.nc.close();
  }
}

const reports = (hb: Heartbeat, fn: string, version?: number) => hb.warm.some((w) => w.fn === fn && (version === undefined || w.version === version));

/**
 * minInstances are kept by the platform, not only by the worker that was asked at deploy time:
 * when that worker goes, or when none was there, the gateway asks another one, without any
 * invocation of the function.
 */
describe('minInstances across worker restarts', () => {
  let p: Platform;
  let beats: Heartbeats;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.buildNodeRuntime();
    p.start('scheduler');
    // Periodic checks often enough that a wrong one would show while the test watches.
    p.start('gateway', { SKIFF_MIN_INSTANCES_CHECK_MS: '500' });
    p.gatewayUrl = `http://127.0.0.1:${p.port}`;
    await waitUntil(async () => (await fetch(`${p.gatewayUrl}/healthz`).catch(() => undefined))?.ok === true, 'gateway', 30_000);
    p.start('worker', { SKIFF_NODE_ID: 'node-a' }, 'worker-node-a');
    await p.waitForNodes(['node-a']);
    beats = await Heartbeats.follow(p.nats);
  }, 180_000);
  afterAll(async () => {
    await beats?.close();
    await p?.close();
  });

  it('starts the minimum on a new worker after the one holding it was killed, with no invocation', async () => {
    expect((await p.deployNode('keeper', COUNTER, { minInstances: 1 })).status).toBe(201);
    await beats.waitFor('node-a', 'keeper', 1, (w) => w.idle >= 1, 'node-a reporting an idle instance of keeper');
    await p.services.find((s) => s.name === 'worker-node-a')!.kill();
    p.start('worker', { SKIFF_NODE_ID: 'node-b' }, 'worker-node-b');
    await beats.waitFor('node-b', 'keeper', 1, (w) => w.idle >= 1, 'node-b reporting an idle instance of keeper');
    const log = readFileSync(join(p.dataDir, 'gateway.log'), 'utf8');
    expect(log).toMatch(/"nodeId":"node-b".*asked a node to start the minimum of instances/);
  });

  it('starts no more instances when asked again, as several gateways or rounds would', async () => {
    const fn = await (await p.api('GET', '/v1/functions/keeper')).json();
    const settings = Object.fromEntries(SETTING_NAMES.map((k) => [k, fn[k]])) as RunSettings;
    const headers = () => encodeInvocation({ callId: newCallId(), deadline: Date.now() + 10_000, fn: 'keeper', fnVersion: fn.version, image: fn.imageDigest, mode: 'stream', settings });
    for (let i = 0; i < 3; i++) beats.nc.publish(SUBJECTS.nodeWarm('node-b'), new Uint8Array(0), { headers: headers() });
    await beats.nc.flush();
    const after = beats.from('node-b').length;
    // A start would be counted in the very next heartbeat (containers being made count).
    await waitUntil(async () => beats.from('node-b').length >= after + 5, 'five more heartbeats from node-b', 30_000);
    const counts = beats.from('node-b').slice(after).map((hb) => hb.warm.find((w) => w.fn === 'keeper')?.instances);
    expect(counts).toEqual(counts.map(() => 1));
  });

  it('brings back neither deleted functions nor replaced versions', async () => {
    expect((await p.deployNode('keeper', COUNTER, { minInstances: 1, memoryMb: 192 })).status).toBe(200);
    expect((await p.deployNode('gone', COUNTER, { minInstances: 1 })).status).toBe(201);
    await beats.waitFor('node-b', 'keeper', 2, (w) => w.idle >= 1, 'node-b reporting keeper version 2');
    await beats.waitFor('node-b', 'gone', 1, (w) => w.idle >= 1, 'node-b reporting gone');
    expect((await p.api('DELETE', '/v1/functions/gone')).status).toBe(204);
    await p.services.find((s) => s.name === 'worker-node-b')!.stop();
    p.start('worker', { SKIFF_NODE_ID: 'node-c' }, 'worker-node-c');
    await beats.waitFor('node-c', 'keeper', 2, (w) => w.idle >= 1, 'node-c reporting keeper version 2');
    // Several more checks of the gateway (every 500 ms) while node-c keeps reporting.
    const after = beats.from('node-c').length;
    await waitUntil(async () => beats.from('node-c').length >= after + 10, 'ten more heartbeats from node-c', 30_000);
    const wrong = beats.from('node-c').filter((hb) => reports(hb, 'gone') || reports(hb, 'keeper', 1));
    expect(wrong).toEqual([]);
  });
});

describe('minInstances of a version deployed while no worker runs', () => {
  let p: Platform;
  let beats: Heartbeats;

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.buildNodeRuntime();
    p.start('scheduler');
    await p.startGateway();
    beats = await Heartbeats.follow(p.nats);
  }, 180_000);
  afterAll(async () => {
    await beats?.close();
    await p?.close();
  });

  it('starts when the first worker joins, with no invocation', async () => {
    expect((await p.deployNode('early', COUNTER, { minInstances: 1 })).status).toBe(201);
    p.start('worker', { SKIFF_NODE_ID: 'node-a' }, 'worker-node-a');
    await beats.waitFor('node-a', 'early', 1, (w) => w.idle >= 1, 'node-a reporting an idle instance of early');
    expect(readFileSync(join(p.dataDir, 'gateway.log'), 'utf8')).toMatch(/no live worker to start minInstances on/);
  });
});
