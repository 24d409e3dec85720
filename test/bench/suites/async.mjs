// Async invocations (Prefer: respond-async) beside raw JetStream through nats.js, in the same run
// and alternating: accepted→completed throughput against publish + consume of the same bodies on
// a stream of the same kind (work queue, file storage, explicit acks), and the accept's latency
// against one publish's PubAck round trip. The function is the `hello` example (node runtime, it
// logs a line per call), kept warm, as users run it.
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { JETSTREAM } from '@skiff/contracts';
import { BENCH_INBOX_PREFIX, BENCH_STREAM, Platform, REPO, functionProcesses } from '@skiff/testkit';
import { TICK_US, pidWith, ticksOf } from '../lib/cpu.mjs';
import { get, post, quantile, report, summarize } from '../lib/stats.mjs';

export const description = 'async invocations: accepted→completed throughput and accept latency, beside raw JetStream publish + consume';

const BODY = '{"name":"Ada"}';
/** Requests in flight at once during a throughput round, for both contenders. */
const WINDOW = 32;

/** Runs `count` calls of `once` with at most WINDOW in flight; resolves with each one's ms. */
async function windowed(count, once) {
  const ms = [];
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const t0 = performance.now();
      await once(i);
      ms.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, lane));
  return ms;
}

export async function run({ runs }) {
  const perRound = Math.max(100, runs);
  const rounds = 5;
  const p = await Platform.create();
  const nc = await connect({ servers: p.nats.url, noAsyncTraces: true, user: p.nats.bench.user, pass: p.nats.bench.password, inboxPrefix: BENCH_INBOX_PREFIX });
  try {
    await p.buildBase();
    await p.buildNodeRuntime();
    await p.startAll('async-node');
    const res = await p.deployNode('hello', join(REPO, 'functions/hello'), { concurrency: 16, minInstances: 1 });
    if (res.status !== 201) throw new Error(`deploy failed: ${res.status} ${await res.text()}`);
    const auth = { authorization: `Bearer ${p.token}`, 'content-type': 'application/json', prefer: 'respond-async' };
    const accept = async () => {
      const r = await post(`${p.gatewayUrl}/v1/functions/hello/invoke`, BODY, auth);
      if (r.status !== 202) throw new Error(`accept answered ${r.status}: ${r.body}`);
      return JSON.parse(r.body).id;
    };
    const succeeded = async (id) => {
      const r = await (await fetch(`${p.gatewayUrl}/v1/invocations/${id}`, { headers: { authorization: `Bearer ${p.token}` } })).json();
      if (r.status !== 'succeeded') throw new Error(`invocation ${id} ${r.status}: ${JSON.stringify(r.error)}`);
    };

    // The raw peer: a stream like SKIFF_ASYNC and a durable consumer acking each message.
    const jsm = await jetstreamManager(nc);
    // An invocation leaves SKIFF_ASYNC (a work queue) when it is acked, after its outcome is
    // recorded: an empty queue is every accepted one done. Polling the stream's size costs the
    // platform next to nothing, where polling each record through the API would load the gateway.
    const queueEmpty = async () => {
      while ((await jsm.streams.info(JETSTREAM.asyncStream)).state.messages > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    };
    await jsm.streams.add({ name: BENCH_STREAM, subjects: ['bench.js.>'], retention: 'workqueue', storage: 'file' });
    await jsm.consumers.add(BENCH_STREAM, { durable_name: 'bench', ack_policy: 'explicit' });
    const js = jetstream(nc);
    const consumer = await js.consumers.get(BENCH_STREAM, 'bench');
    let acked = 0;
    let lastAck = 0;
    const messages = await consumer.consume({ max_messages: 256 });
    void (async () => {
      for await (const m of messages) {
        m.ack();
        acked++;
        lastAck = performance.now();
      }
    })();
    const rawRound = async () => {
      const start = acked;
      const t0 = performance.now();
      await windowed(perRound, (i) => js.publish(`bench.js.${i}`, BODY));
      while (acked - start < perRound) await new Promise((resolve) => setTimeout(resolve, 1));
      return perRound / ((lastAck - t0) / 1000);
    };
    const roundIds = [];
    const skiffRound = async () => {
      const ids = [];
      const t0 = performance.now();
      await windowed(perRound, async () => ids.push(await accept()));
      await queueEmpty();
      roundIds.push(...ids); // each checked to have succeeded after the timed rounds
      return perRound / ((performance.now() - t0) / 1000);
    };

    // Warm both paths (instances, JIT, the stream files).
    await rawRound();
    await skiffRound();
    // Where the CPU goes: each process of this platform, and this one (the load), over each
    // contender's rounds.
    const pids = {
      gateway: p.services.find((s) => s.name === 'gateway').child.pid,
      scheduler: p.services.find((s) => s.name === 'scheduler').child.pid,
      worker: p.services.find((s) => s.name.startsWith('worker')).child.pid,
      'nats-server': pidWith('nats-server', `-p ${p.nats.port} `),
    };
    const sample = () => {
      const out = Object.fromEntries(Object.entries(pids).map(([role, pid]) => [role, ticksOf(pid) * TICK_US]));
      out['function (node runtime)'] = functionProcesses('hello').reduce((sum, pid) => sum + ticksOf(pid) * TICK_US, 0);
      const own = process.cpuUsage();
      out['load (this process)'] = own.user + own.system;
      return out;
    };
    const cpu = { skiff: {}, raw: {} };
    const measured = async (which, round) => {
      const before = sample();
      const rate = await round();
      const after = sample();
      for (const role of Object.keys(after)) cpu[which][role] = (cpu[which][role] ?? 0) + after[role] - (before[role] ?? 0);
      return rate;
    };
    const rates = { skiff: [], raw: [] };
    for (let r = 0; r < rounds; r++) {
      rates.skiff.push(await measured('skiff', skiffRound));
      rates.raw.push(await measured('raw', rawRound));
    }
    for (const id of roundIds) await succeeded(id);
    console.log(`\naccepted→completed throughput, ${rounds} alternating rounds of ${perRound} (${WINDOW} in flight), invocations per second`);
    for (const [name, list] of Object.entries({ 'Skiff async (hello, node runtime)': rates.skiff, 'raw JetStream publish + consume': rates.raw })) {
      console.log(`  ${name.padEnd(40)} median ${quantile(list, 0.5).toFixed(0).padStart(7)}   rounds ${list.map((x) => x.toFixed(0)).join(' ')}`);
    }
    console.log(`  ratio of medians: ${(quantile(rates.skiff, 0.5) / quantile(rates.raw, 0.5)).toFixed(3)} (target ≥ 0.5)`);
    console.log(`\nCPU per invocation over those rounds, µs`);
    console.log(`  ${'process'.padEnd(26)} ${'Skiff async'.padStart(12)} ${'raw JetStream'.padStart(14)}`);
    const total = { skiff: 0, raw: 0 };
    for (const role of Object.keys(cpu.skiff)) {
      const per = (which) => (cpu[which][role] ?? 0) / (rounds * perRound);
      total.skiff += per('skiff');
      total.raw += per('raw');
      console.log(`  ${role.padEnd(26)} ${per('skiff').toFixed(0).padStart(12)} ${per('raw').toFixed(0).padStart(14)}`);
    }
    console.log(`  ${'all'.padEnd(26)} ${total.skiff.toFixed(0).padStart(12)} ${total.raw.toFixed(0).padStart(14)}   (2 cores / all = ${(2e6 / total.skiff).toFixed(0)} vs ${(2e6 / total.raw).toFixed(0)} per second at most)`);

    // Accept latency: one at a time, alternating with one raw publish, and, to show where the
    // accept's time goes, the same HTTP request to /healthz (client, Fastify, no NATS) and a
    // synchronous invoke of the same warm function.
    const sync = { authorization: auth.authorization, 'content-type': 'application/json' };
    const latency = {
      'Skiff accept (202)': accept,
      'raw JetStream PubAck': () => js.publish('bench.js.lat', BODY),
      'HTTP GET /healthz (no NATS)': () => get(`${p.gatewayUrl}/healthz`),
      'Skiff sync invoke (200)': () => post(`${p.gatewayUrl}/v1/functions/hello/invoke`, BODY, sync),
    };
    const samples = Object.fromEntries(Object.keys(latency).map((k) => [k, []]));
    for (let i = 0; i < runs; i++) {
      for (const [name, once] of Object.entries(latency)) {
        const t0 = performance.now();
        await once();
        samples[name].push(performance.now() - t0);
      }
    }
    report(`accept latency, ${runs} alternating runs, one at a time (target: accept p50 ≤ 2 × PubAck)`, Object.entries(samples).map(([n, s]) => summarize(n, s)), 'raw JetStream PubAck');
    await messages.close();
  } finally {
    await nc.close();
    await p.close();
  }
}
