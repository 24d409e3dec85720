// Small statistics and reporting helpers shared by the benchmark suites.
import { Agent, request } from 'node:http';

/** The q-quantile (0..1) of a list of numbers, by nearest rank. */
export function quantile(values, q) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

export function summarize(name, samples) {
  return { name, runs: samples.length, p50: quantile(samples, 0.5), p99: quantile(samples, 0.99), min: Math.min(...samples) };
}

const fmt = (ms) => (ms >= 10 ? ms.toFixed(1) : ms.toFixed(3));

/**
 * Prints rows side by side with the ratio of each median to the baseline's median, e.g.
 * "skiff 3.2 × fastify". The baseline is the row named `baseline`.
 */
export function report(title, rows, baseline) {
  const base = rows.find((r) => r.name === baseline);
  console.log(`\n${title}`);
  console.log(`  ${'what'.padEnd(34)} ${'runs'.padStart(5)} ${'p50 ms'.padStart(9)} ${'p99 ms'.padStart(9)} ${'min ms'.padStart(9)}  p50 ratio`);
  for (const r of rows) {
    const ratio = base && r !== base ? `${(r.p50 / base.p50).toFixed(2)} × ${base.name}` : '';
    console.log(`  ${r.name.padEnd(34)} ${String(r.runs).padStart(5)} ${fmt(r.p50).padStart(9)} ${fmt(r.p99).padStart(9)} ${fmt(r.min).padStart(9)}  ${ratio}`);
  }
}

/**
 * Runs each measured function in turn, `runs` times, so noise hits all of them alike.
 * `before`, if given, runs untimed ahead of every measured call.
 */
export async function alternate(runs, contenders, { before } = {}) {
  const samples = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) {
    for (const [name, once] of Object.entries(contenders)) {
      await before?.();
      const t0 = performance.now();
      await once();
      samples[name].push(performance.now() - t0);
    }
  }
  return samples;
}

/**
 * A minimal keep-alive HTTP client (fetch adds about a millisecond of its own per request,
 * which would hide what is being measured).
 */

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

export function post(url, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A GET through the same keep-alive agent as `post`. */
export function get(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
