// Small statistics and reporting helpers shared by the benchmark suites.

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

/** Runs each measured function in turn, `runs` times, so noise hits all of them alike. */
export async function alternate(runs, contenders) {
  const samples = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
  for (let i = 0; i < runs; i++) {
    for (const [name, once] of Object.entries(contenders)) {
      const t0 = performance.now();
      await once();
      samples[name].push(performance.now() - t0);
    }
  }
  return samples;
}
