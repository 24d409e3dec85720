// Invocations end to end (HTTP → gateway → NATS → scheduler → worker → function → back) beside
// their floors in the same run: a bare Fastify server echoing the body, and raw NATS
// request/reply between two processes. Reports p50/p99 at one connection, throughput at 32,
// and cold starts (image unpacked, no warm instance) for an exec and a node function beside
// their own peers: the launcher's go-to-status time and a bare `node -e 0`.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { DEFAULT_SETTINGS } from '@skiff/contracts';
import { BENCH_INBOX_PREFIX, Platform, REPO, freePort } from '@skiff/testkit';
import { defaultSeccompProfile, runtimeSpec } from '@skiff/worker';
import { bareNode, launcherGoToStatus, stemsSettled } from '../lib/cold.mjs';
import { alternate, post, quantile, report, summarize } from '../lib/stats.mjs';
import { wrk } from '../lib/wrk.mjs';

export const description = 'warm and cold invokes through every hop vs bare Fastify and raw NATS';

const BODY = '{"hello":"world"}';
const JSON_TYPE = { 'content-type': 'application/json' };
const median = (xs) => quantile(xs, 0.5);
const LAUNCHER = join(REPO, 'services/launcher/build/skiff-launch');
/** The worker's default SKIFF_UID_BASE: function n's range starts here + 65536 × n. */
const DEFAULT_UID_BASE = 100_000_000;

function child(script, args) {
  const p = spawn(process.execPath, [join(REPO, script), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return { p, ready: once(p.stdout, 'data') };
}

export async function run({ runs }) {
  const p = await Platform.create();
  const port = await freePort();
  const fastify = child('test/bench/peers/fastify-echo.mjs', [String(port)]);
  const natsPeer = child('test/bench/peers/nats-echo.mjs', [p.nats.url, p.nats.bench.user, p.nats.bench.password]);
  const nc = await connect({ servers: p.nats.url, noAsyncTraces: true, user: p.nats.bench.user, pass: p.nats.bench.password, inboxPrefix: BENCH_INBOX_PREFIX });
  // The bench user may use only bench.>: heartbeats are watched as a gateway watches them.
  const watch = await p.nats.connect('gateway');
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

    // Cold starts come to an idle node: each call 200 ms after the last one, as cold starts do
    // (and not while the worker still stops an instance a new version replaced). Each row has
    // its peer in the same rounds, alternating, and the targets are ratios to those peers:
    // - exec: a container per invocation (wrk, pausing between calls), beside the launcher's own
    //   go-to-status time for the same function's bundle (a launcher started ahead, as the
    //   worker keeps them): what the platform adds to what the container itself costs. The bare
    //   Fastify echo paced the same way is the floor of one HTTP call to an idle process.
    // - node: the first call of a function deployed just before (the `hello` example, which logs
    //   a line per call), after the worker's stem cells, if it keeps any, have all booted; beside
    //   a bare `node -e 0`. Then a new version of a function that has run on the node before.
    //   Those calls need a deploy before each, so they are timed from this process.
    const pauseMs = 200;
    const coldRounds = Number(process.env.BENCH_COLD_ROUNDS ?? 5);
    const perRound = Math.max(4, Math.ceil(Math.max(10, Math.floor(runs / 10)) * 2 / coldRounds));
    const coldSeconds = Math.max(1, Math.ceil((perRound * (pauseMs + 20)) / 1000));
    const idle = () => new Promise((r) => setTimeout(r, pauseMs));
    const echoImage = await p.store.resolve('echo:latest');
    const nodeDir = join(p.dataDir, 'nodes', 'bench-node');
    const uids = JSON.parse(readFileSync(join(nodeDir, 'uids.json'), 'utf8'));
    const echoSpec = runtimeSpec({
      rootfs: join(nodeDir, 'images', 'rootfs', echoImage.digest.replace(':', '-'), 'rootfs'),
      image: echoImage.config,
      fn: 'echo',
      settings: DEFAULT_SETTINGS,
      env: ['SKIFF_FUNCTION=echo', 'SKIFF_FUNCTION_VERSION=1', 'SKIFF_CALL_ID=bench', `SKIFF_DEADLINE_MS=${Date.now() + 3_600_000}`],
      instanceId: 'bench-go',
      hostId: DEFAULT_UID_BASE + 65536 * uids.echo,
      seccomp: defaultSeccompProfile(),
    });
    const goToStatus = launcherGoToStatus({ launcher: LAUNCHER, spec: echoSpec, body: BODY, pauseMs });
    await goToStatus.once(); // warm-up: seccomp cache, page cache

    const helloBody = '{"name":"Ada"}';
    const packed = await p.deployNode('hello', join(REPO, 'functions/hello'));
    if (packed.status !== 201) throw new Error(`deploy failed: ${packed.status} ${await packed.text()}`);
    const callHello = async (fn) => {
      const r = await post(`${p.gatewayUrl}/v1/functions/${fn}/invoke`, helloBody, { ...auth, ...JSON_TYPE });
      if (r.status !== 200) throw new Error(`${fn} answered ${r.status} ${r.body}`);
    };
    await callHello('hello'); // the image is unpacked once: these rows are "image unpacked"
    let fresh = 0;
    const newFunction = async () => {
      await stemsSettled(watch, 'bench-node');
      const name = `hello-${process.pid}-${++fresh}`;
      await deploy(p.api('PUT', `/v1/functions/${name}`, { image: 'hello:latest', mode: 'stream', timeoutMs: 30_000 }));
      await idle();
      const t0 = performance.now();
      await callHello(name);
      return performance.now() - t0;
    };
    let version = 0;
    const newVersion = async () => {
      await stemsSettled(watch, 'bench-node');
      const r = await p.api('PUT', '/v1/functions/hello', { image: 'hello:latest', mode: 'stream', timeoutMs: 30_000 + ++version });
      if (r.status !== 200) throw new Error(`redeploy failed: ${r.status} ${await r.text()}`);
      await idle();
      const t0 = performance.now();
      await callHello('hello');
      return performance.now() - t0;
    };
    // The peer waits as the platform's rows do: no stem cell boots beside it.
    const bare = async () => (await stemsSettled(watch, 'bench-node'), await idle(), bareNode());

    const cold = { exec: [], bareHttp: [], go: [], fnNew: [], fnVersion: [], node: [] };
    for (let round = 0; round < coldRounds; round++) {
      cold.exec.push(await skiffCold('echo', coldSeconds, pauseMs));
      const go = [];
      for (let i = 0; i < perRound; i++) go.push(await goToStatus.once());
      cold.go.push(summarize('go', go));
      cold.bareHttp.push(await bareLoad(1, coldSeconds, pauseMs));
      for (let i = 0; i < perRound; i++) {
        cold.fnNew.push(await newFunction());
        cold.node.push(await bare());
        cold.fnVersion.push(await newVersion());
      }
    }
    goToStatus.close();
    const failedCold = [...cold.exec, ...cold.bareHttp].reduce((n, r) => n + r.non2xx + r.errors, 0);
    if (failedCold) throw new Error(`${failedCold} requests failed during the cold starts`);
    const coldRow = (name, rs) => ({ ...fromRounds(name, rs), min: Math.min(...rs.map((r) => r.min)) });
    const execRow = coldRow('skiff exec echo (new container)', cold.exec);
    const goRow = { name: 'launcher go → status (same bundle)', runs: cold.go.reduce((n, r) => n + r.runs, 0), p50: median(cold.go.map((r) => r.p50)), p99: median(cold.go.map((r) => r.p99)), min: Math.min(...cold.go.map((r) => r.min)) };
    report(
      `exec cold start, image unpacked, each call ${pauseMs} ms after the last: ${coldRounds} alternating rounds (p50/p99: median of the rounds')`,
      [execRow, goRow, coldRow('bare fastify echo', cold.bareHttp)],
      goRow.name,
    );
    const perRoundExec = cold.exec.map((r, i) => (r.p50 / cold.go[i].p50).toFixed(2)).join(' ');
    console.log(`  exec cold p50 = ${(execRow.p50 / goRow.p50).toFixed(2)} × the launcher's go → status (target ≤ 2); per round: ${perRoundExec}`);
    const nodeRow = summarize('bare node -e 0 (hyperfine)', cold.node);
    report(
      `node cold start, image unpacked, each call ${pauseMs} ms after the last, alternating with node -e 0: ${coldRounds * perRound} each`,
      [summarize('skiff node, new function (hello)', cold.fnNew), summarize('skiff node, new version (hello)', cold.fnVersion), nodeRow],
      nodeRow.name,
    );
    console.log(`  node cold p50, new function = ${(median(cold.fnNew) / nodeRow.p50).toFixed(2)} × node -e 0 (target ≤ 0.5); new version = ${(median(cold.fnVersion) / nodeRow.p50).toFixed(2)} ×`);
    console.log(`  (targets: warm p50 ≤ 1 ms and p99 ≤ 5 ms; ≥ 5000 invocations/s; measured p50s: warm ${median(rows.skiff.map((r) => r.p50)).toFixed(3)} ms, throughput ${rpsSkiff.rps.toFixed(0)}/s)`);
  } finally {
    await nc.close();
    await watch.close();
    fastify.p.kill();
    natsPeer.p.kill();
    await p.close();
  }
}
