#!/usr/bin/env node
// `npm run bench [suite ...]`: runs the named benchmark suites (all by default) and prints
// medians side by side with their peers. Benchmarks are never assertions: they report.
import { readdirSync } from 'node:fs';

const available = readdirSync(new URL('./suites/', import.meta.url)).filter((f) => f.endsWith('.mjs')).map((f) => f.slice(0, -4)).sort();
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !available.includes(w));
if (unknown.length) {
  console.error(`bench: unknown suite ${unknown.join(', ')}; available: ${available.join(', ')}`);
  process.exit(2);
}
const runs = Number(process.env.BENCH_RUNS ?? 200);
for (const name of wanted.length ? wanted : available) {
  const suite = await import(`./suites/${name}.mjs`);
  console.log(`\n== ${name}: ${suite.description}`);
  await suite.run({ runs });
}
