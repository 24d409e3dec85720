// Invocations end to end (HTTP → gateway → NATS → scheduler → worker → function → back) beside
// their floors in the same run: a bare Fastify server echoing the body, and raw NATS
// request/reply between two processes. Reports p50/p99 at one connection, throughput at 32,
// and cold starts (image unpacked, no warm instance) for an exec and a node function.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Platform, REPO, freePort } from '@skiff/testkit';
import { alternate, post, quantile, report, summarize } from '../lib/stats.mjs';

export const description = 'warm and cold invokes through every hop vs bare Fastify and raw NATS';

const BODY = '{"hello":"world"}';
const JSON_TYPE = { 'content-type': 'application/json' };

/** Requests per second with `connections` loops sending back to back for `ms`. */
async function throughput(once, connections, ms) {
  let done = 0;
  const until = Date.now() + ms;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (Date.now() < until) {
      await once();
      done++;
    }
  }));
  return done / (ms / 1000);
}

function child(script, args) {
  const p = spawn(process.execPath, [join(REPO, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return { p, ready: once(p.stdout, 'data') };
}

export async function run({ runs }) {
  const p = await Platform.create();
  const port = await freePort();
  const fastify = child('test/bench/peers/fastify-echo.mjs', [String(port)]);
  const natsPeer = child('test/bench/peers/nats-echo.mjs', [p.nats.url]);
  const nc = await connect({ servers: p.nats.url, noAsyncTraces: true });
  try {
    await Promise.all([fastify.ready, natsPeer.ready]);
    await p.buildBase();
    await p.buildNodeRuntime();
    await p.startAll('bench-node');
    const auth = { authorization: `Bearer ${p.token}` };
    const deploy = async (res) => {
      const r = await res;
      if (r.status !== 201) throw new Error(`deploy failed: ${r.status} ${await r.text()}`);
    };
    await deploy(p.deployNode('noop', join(REPO, 'test/bench/fixtures/noop'), { concurrency: 64, maxInstances: 2 }));
    await deploy(p.deploy('echo', join(REPO, 'functions/echo'), ['/bin/sh', '/function/handler.sh']));

    const invoke = (fn) => async () => {
      const r = await post(`${p.gatewayUrl}/v1/functions/${fn}/invoke`, BODY, { ...auth, ...JSON_TYPE });
      if (r.status !== 200) throw new Error(`${fn} answered ${r.status} ${r.body}`);
    };
    const bare = async () => {
      const r = await post(`http://127.0.0.1:${port}/echo`, BODY, JSON_TYPE);
      if (r.body !== BODY) throw new Error(`fastify answered ${r.status}`);
    };
    const raw = async () => {
      await nc.request('bench.echo', BODY, { timeout: 5000 });
    };

    // Warm-up: unpack images, start the instance, open connections.
    for (let i = 0; i < 20; i++) await invoke('noop')(), await bare(), await raw();
    await invoke('echo')();

    const warm = await alternate(runs, { 'skiff warm node no-op': invoke('noop'), 'bare fastify echo': bare, 'raw nats request/reply': raw });
    report(`warm invoke: ${runs} alternating runs, one connection`, Object.entries(warm).map(([n, s]) => summarize(n, s)), 'bare fastify echo');

    const seconds = Number(process.env.BENCH_SECONDS ?? 5);
    const rpsSkiff = await throughput(invoke('noop'), 32, seconds * 1000);
    const rpsBare = await throughput(bare, 32, seconds * 1000);
    console.log(`\nthroughput at 32 connections, ${seconds} s each`);
    console.log(`  skiff warm node no-op   ${rpsSkiff.toFixed(0).padStart(8)} invocations/s   ${(rpsSkiff / rpsBare).toFixed(2)} × bare fastify`);
    console.log(`  bare fastify echo       ${rpsBare.toFixed(0).padStart(8)} requests/s`);

    // Cold: exec starts a container per invocation; node with every instance gone (a new
    // version each time, so no warm instance exists) — the image is already unpacked.
    const coldRuns = Math.max(10, Math.floor(runs / 10));
    let version = 0;
    const coldNode = async () => {
      await deploy(Promise.resolve(await p.api('PUT', '/v1/functions/noop', { image: 'noop:latest', mode: 'stream', timeoutMs: 30_000 + ++version })).then((r) => (r.status === 200 ? { status: 201, text: () => '' } : r)));
      const t0 = performance.now();
      await invoke('noop')();
      return performance.now() - t0;
    };
    const execSamples = [];
    const nodeSamples = [];
    for (let i = 0; i < coldRuns; i++) {
      const t0 = performance.now();
      await invoke('echo')();
      execSamples.push(performance.now() - t0);
      nodeSamples.push(await coldNode());
    }
    report(`cold start, image unpacked, ${coldRuns} runs each`, [summarize('skiff exec echo (new container)', execSamples), summarize('skiff node, no warm instance', nodeSamples)], 'skiff exec echo (new container)');
    console.log(`  (targets: warm p50 ≤ 1 ms and p99 ≤ 5 ms; ≥ 5000 invocations/s; exec cold p50 ≤ 15 ms; measured p50s: warm ${quantile(warm['skiff warm node no-op'], 0.5).toFixed(3)} ms, exec cold ${quantile(execSamples, 0.5).toFixed(1)} ms)`);
  } finally {
    await nc.close();
    fastify.p.kill();
    natsPeer.p.kill();
    await p.close();
  }
}
