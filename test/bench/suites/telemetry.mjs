// What telemetry costs: three platforms side by side in one run: telemetry off
// (OTEL_SDK_DISABLED); the default (nothing exported: spans are made but not recorded, so trace
// context still flows); and on, exporting every span over OTLP/HTTP to a receiver in this
// process and serving Prometheus metrics on each service, which this process scrapes each
// second. Warm throughput and latency at 32 connections, alternating rounds, for the no-op and
// for the `hello` example (it logs a line per call). Target: on ≥ 0.9 × off.
import { createServer } from 'node:http';
import { join } from 'node:path';
import { Platform, REPO, freePort } from '@skiff/testkit';
import { quantile } from '../lib/stats.mjs';
import { wrk } from '../lib/wrk.mjs';

export const description = 'warm invokes with traces exported and metrics served vs telemetry off, alternating';

const BODY = '{"name":"Ada"}';
const JSON_TYPE = { 'content-type': 'application/json' };
const median = (xs) => quantile(xs, 0.5);

/** An OTLP/HTTP receiver that reads and counts what it is sent, as a collector would take it. */
async function receiver() {
  let requests = 0;
  let bytes = 0;
  const server = createServer((req, res) => {
    req.on('data', (c) => (bytes += c.length));
    req.on('end', () => (requests++, res.writeHead(200, { 'content-type': 'application/json' }).end('{}')));
  });
  const port = await freePort();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${port}`, stats: () => ({ requests, bytes }), close: () => new Promise((r) => server.close(r)) };
}

async function platform(name, env, uidBase) {
  const p = await Platform.create();
  await p.buildNodeRuntime();
  const metricsPorts = env.OTEL_METRICS_EXPORTER ? [await freePort(), await freePort(), await freePort()] : [];
  const withPort = (i) => (metricsPorts[i] ? { SKIFF_METRICS_PORT: String(metricsPorts[i]) } : {});
  p.start('scheduler', { ...env, ...withPort(0) });
  p.start('worker', { ...env, ...withPort(1), SKIFF_NODE_ID: `bench-${name}`, SKIFF_UID_BASE: String(uidBase) }, `worker-bench-${name}`);
  await p.startGateway({ ...env, ...withPort(2) });
  await p.waitForNodes([`bench-${name}`]);
  // Function names of their own: both workers share this kernel's cgroup tree (/skiff/<fn>).
  const fns = { noop: `noop-${name}`, hello: `hello-${name}` };
  for (const [example, dir] of [['noop', 'test/bench/fixtures/noop'], ['hello', 'functions/hello']]) {
    const r = await p.deployNode(fns[example], join(REPO, dir), { concurrency: 64, maxInstances: 2 });
    if (r.status !== 201) throw new Error(`deploy failed: ${r.status} ${await r.text()}`);
  }
  const auth = { authorization: `Bearer ${p.token}` };
  const load = (example, seconds) => wrk({ url: `${p.gatewayUrl}/v1/functions/${fns[example]}/invoke`, body: BODY, headers: { ...auth, ...JSON_TYPE }, connections: 32, seconds });
  const scrape = async () => {
    let samples = 0;
    for (const port of metricsPorts) samples += (await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).split('\n').filter((l) => l && !l.startsWith('#')).length;
    return samples;
  };
  return { p, load, scrape };
}

export async function run() {
  const otlp = await receiver();
  const off = await platform('off', { OTEL_SDK_DISABLED: 'true' }, 100_000_000);
  const dflt = await platform('default', {}, 105_000_000);
  const on = await platform('on', { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_METRICS_EXPORTER: 'prometheus' }, 110_000_000);
  const sides = { off, default: dflt, on };
  // Prometheus's default is a scrape every 15 s or more; each second is harsher.
  const scraping = setInterval(() => void on.scrape().catch(() => undefined), 1000);
  try {
    for (const example of ['noop', 'hello']) for (const side of Object.values(sides)) await side.load(example, 2); // warm-up: instances, connections
    const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
    const seconds = Number(process.env.BENCH_SECONDS ?? 3);
    const rows = { noop: { off: [], default: [], on: [] }, hello: { off: [], default: [], on: [] } };
    for (let i = 0; i < rounds; i++) {
      for (const example of ['noop', 'hello']) {
        // Which side goes first rotates too.
        const names = Object.keys(sides);
        const order = names.map((_, k) => names[(k + i) % names.length]);
        for (const name of order) rows[example][name].push(await sides[name].load(example, seconds));
      }
    }
    const failed = Object.values(rows).flatMap((r) => Object.values(r).flat()).reduce((n, r) => n + r.non2xx + r.errors, 0);
    if (failed) throw new Error(`${failed} requests failed`);
    console.log(`\nwarm invokes at 32 connections (wrk), ${rounds} alternating rounds of ${seconds} s; median of the rounds`);
    for (const example of ['noop', 'hello']) {
      const rps = (side) => median(rows[example][side].map((r) => r.rps));
      const p50 = (side) => median(rows[example][side].map((r) => r.p50));
      const perRound = (side) => rows[example][side].map((r, i) => (r.rps / rows[example].off[i].rps).toFixed(2)).join(' ');
      console.log(`  ${example.padEnd(6)} off ${rps('off').toFixed(0).padStart(6)}/s p50 ${p50('off').toFixed(2)} ms | default ${rps('default').toFixed(0).padStart(6)}/s p50 ${p50('default').toFixed(2)} ms | on ${rps('on').toFixed(0).padStart(6)}/s p50 ${p50('on').toFixed(2)} ms`);
      console.log(`         default/off ${(rps('default') / rps('off')).toFixed(2)} (per round ${perRound('default')}); on/off ${(rps('on') / rps('off')).toFixed(2)} (target ≥ 0.90; per round ${perRound('on')})`);
    }
    const { requests, bytes } = otlp.stats();
    console.log(`  exported: ${requests} OTLP requests, ${(bytes / 1024 / 1024).toFixed(1)} MiB; ${await on.scrape()} metric samples served by the three services`);
  } finally {
    clearInterval(scraping);
    for (const side of Object.values(sides)) await side.p.close();
    await otlp.close();
  }
}
