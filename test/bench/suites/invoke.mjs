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
import { wrk } from '../lib/wrk.mjs';

export const description = 'warm and cold invokes through every hop vs bare Fastify and raw NATS';

const BODY = '{"hello":"world"}';
const JSON_TYPE = { 'content-type': 'application/json' };
const median = (xs) => quantile(xs, 0.5);

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
    const raw = async () => {
      await nc.request('bench.echo', BODY, { timeout: 5000 });
    };
    const skiffCold = (fn, seconds, pauseMs) => wrk({ url: `${p.gatewayUrl}/v1/functions/${fn}/invoke`, body: BODY, headers: { ...auth, ...JSON_TYPE }, seconds, pauseMs });
    const skiffLoad = (connections, seconds) => wrk({ url: `${p.gatewayUrl}/v1/functions/noop/invoke`, body: BODY, headers: { ...auth, ...JSON_TYPE }, connections, seconds });
    const bareLoad = (connections, seconds, pauseMs = 0) => wrk({ url: `http://127.0.0.1:${port}/echo`, body: BODY, headers: JSON_TYPE, connections, seconds, pauseMs });

    // Warm-up: unpack images, start the instance, open connections.
    for (let i = 0; i < 20; i++) await invoke('noop')(), await raw();
    await invoke('echo')();
    await skiffLoad(1, 1);
    await bareLoad(1, 1);

    // HTTP latency from wrk in alternating rounds (so noise hits both alike); the median of
    // the rounds' percentiles is reported. Raw NATS from nats.js, the floor of one hop.
    const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
    const seconds = Number(process.env.BENCH_SECONDS ?? 2);
    const rows = { skiff: [], bare: [] };
    for (let i = 0; i < rounds; i++) {
      rows.skiff.push(await skiffLoad(1, seconds));
      rows.bare.push(await bareLoad(1, seconds));
    }
    const natsSamples = (await alternate(runs, { raw })).raw;
    const fromRounds = (name, rs) => ({ name, runs: rs.reduce((n, r) => n + r.requests, 0), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), min: Math.min(...rs.map((r) => r.p50)) });
    const failed = [...rows.skiff, ...rows.bare].reduce((n, r) => n + r.non2xx + r.errors, 0);
    if (failed) throw new Error(`${failed} requests failed during the latency rounds`);
    report(
      `warm invoke at one connection: wrk, ${rounds} alternating rounds of ${seconds} s (min column: best round's p50)`,
      [fromRounds('skiff warm node no-op', rows.skiff), fromRounds('bare fastify echo', rows.bare), summarize('raw nats request/reply (nats.js)', natsSamples)],
      'bare fastify echo',
    );

    const tSeconds = Number(process.env.BENCH_SECONDS ?? 5);
    await skiffLoad(32, 1); // warm-up at this concurrency: a second instance may start
    await bareLoad(32, 1);
    const rpsSkiff = await skiffLoad(32, tSeconds);
    const rpsBare = await bareLoad(32, tSeconds);
    console.log(`\nthroughput at 32 connections (wrk), ${tSeconds} s each`);
    console.log(`  skiff warm node no-op   ${rpsSkiff.rps.toFixed(0).padStart(8)} invocations/s   ${(rpsSkiff.rps / rpsBare.rps).toFixed(2)} × bare fastify   p50 ${rpsSkiff.p50.toFixed(2)} ms  p99 ${rpsSkiff.p99.toFixed(2)} ms  failed ${rpsSkiff.non2xx + rpsSkiff.errors}`);
    console.log(`  bare fastify echo       ${rpsBare.rps.toFixed(0).padStart(8)} requests/s      p50 ${rpsBare.p50.toFixed(2)} ms  p99 ${rpsBare.p99.toFixed(2)} ms`);

    // Cold: exec starts a container per invocation; node with every instance gone (a new
    // version each time, so no warm instance exists) — the image is already unpacked. Each
    // cold start comes to an idle node (200 ms after the last one), as cold starts do, not
    // while the worker still stops the instance a new version replaced. The exec calls come from
    // wrk, pausing between calls, beside the bare Fastify echo after the same pause: the floor of
    // an HTTP call to an idle process here. (A Node client adds about a millisecond of its own
    // to a call after such a pause on this kind of machine.) The node cold start needs a deploy
    // before each call, so it is timed from this process.
    const pauseMs = 200;
    const coldRuns = Math.max(10, Math.floor(runs / 10));
    const coldSeconds = Math.ceil((coldRuns * (pauseMs + 20)) / 1000);
    const execCold = await skiffCold('echo', coldSeconds, pauseMs);
    const bareCold = await bareLoad(1, coldSeconds, pauseMs);
    const idle = () => new Promise((r) => setTimeout(r, pauseMs));
    let version = 0;
    const coldNode = async () => {
      await deploy(Promise.resolve(await p.api('PUT', '/v1/functions/noop', { image: 'noop:latest', mode: 'stream', timeoutMs: 30_000 + ++version })).then((r) => (r.status === 200 ? { status: 201, text: () => '' } : r)));
      await idle();
      const t0 = performance.now();
      await invoke('noop')();
      return performance.now() - t0;
    };
    const nodeSamples = [];
    for (let i = 0; i < coldRuns; i++) nodeSamples.push(await coldNode());
    const failedCold = execCold.non2xx + execCold.errors + bareCold.non2xx + bareCold.errors;
    if (failedCold) throw new Error(`${failedCold} requests failed during the cold starts`);
    const fromWrk = (name, r) => ({ name, runs: r.requests, p50: r.p50, p99: r.p99, min: r.min });
    report(
      `cold start, image unpacked, each call ${pauseMs} ms after the last`,
      [fromWrk('skiff exec echo (new container)', execCold), fromWrk('bare fastify echo', bareCold), summarize('skiff node, no warm instance', nodeSamples)],
      'bare fastify echo',
    );
    console.log(`  (targets: warm p50 ≤ 1 ms and p99 ≤ 5 ms; ≥ 5000 invocations/s; exec cold p50 ≤ 15 ms; measured p50s: warm ${median(rows.skiff.map((r) => r.p50)).toFixed(3)} ms, throughput ${rpsSkiff.rps.toFixed(0)}/s, exec cold ${execCold.p50.toFixed(1)} ms)`);
  } finally {
    await nc.close();
    fastify.p.kill();
    natsPeer.p.kill();
    await p.close();
  }
}
