// Where a warm invoke spends its time: the same no-op stream function reached over HTTP
// through the gateway (which places it itself), placed by the scheduler (skiff.invoke answers
// with a node, the gateway's path before it has heard a heartbeat) and at the worker directly
// (NATS → worker), alternating, in the same run. The HTTP row includes the Node.js client's own cost (about 0.4 ms here).
import { join } from 'node:path';
import { Platform, REPO } from '@skiff/testkit';
import { DEFAULT_SETTINGS, SUBJECTS, decodePlaced, encodeInvocation, newCallId } from '@skiff/contracts';
import { alternate, post, report, summarize } from '../lib/stats.mjs';

/** A scheduler answers with the node to send the call to; the call then goes there. */
async function viaScheduler(nc, headers) {
  const placed = decodePlaced((await nc.request(SUBJECTS.invoke, new Uint8Array(0), { timeout: 5000, headers })).headers);
  if (!placed) throw new Error('skiff.invoke did not answer with a placement');
  return nc.request(SUBJECTS.nodeInvoke(placed.nodeId), '{}', { timeout: 5000, headers });
}

export const description = 'a warm invoke entered at each hop: gateway, scheduler, worker';

export async function run({ runs }) {
  const p = await Platform.create();
  const nc = await p.nats.connect('gateway'); // enters each hop as the gateway would
  try {
    await p.buildBase();
    await p.buildNodeRuntime();
    await p.startAll('hop-node');
    const res = await p.deployNode('noop', join(REPO, 'test/bench/fixtures/noop'), { concurrency: 64 });
    if (res.status !== 201) throw new Error(`deploy failed: ${res.status} ${await res.text()}`);
    const fn = await (await p.api('GET', '/v1/functions/noop')).json();
    const headers = () =>
      encodeInvocation({
        callId: newCallId(),
        deadline: Date.now() + 10_000,
        fn: 'noop',
        fnVersion: fn.version,
        image: fn.imageDigest,
        mode: 'stream',
        settings: { ...DEFAULT_SETTINGS, concurrency: 64 },
        contentType: 'application/json',
      });
    const auth = { authorization: `Bearer ${p.token}`, 'content-type': 'application/json' };
    const hops = {
      'HTTP → gateway → worker → function': () => post(`${p.gatewayUrl}/v1/functions/noop/invoke`, '{}', auth),
      'NATS skiff.invoke (scheduler places) → worker → function': () => viaScheduler(nc, headers()),
      'NATS → worker → function': () => nc.request(SUBJECTS.nodeInvoke('hop-node'), '{}', { timeout: 5000, headers: headers() }),
    };
    for (const once of Object.values(hops)) for (let i = 0; i < 20; i++) await once();
    const samples = await alternate(runs, hops);
    report(`warm no-op entered at each hop, ${runs} alternating runs`, Object.entries(samples).map(([n, s]) => summarize(n, s)), 'NATS → worker → function');
  } finally {
    await nc.close();
    await p.close();
  }
}
