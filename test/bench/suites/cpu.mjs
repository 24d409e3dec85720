// Where the CPU of a warm invocation goes: wrk drives the no-op stream function at 32
// connections, and each process's CPU time (user + system, from /proc) is divided by the
// invocations served. On a 2-core machine, 5,000 invocations/s leave 400 µs of CPU for all
// processes together, so this tells which hop to work on.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Platform, REPO } from '@skiff/testkit';
import { TICK_US, ticksOf } from '../lib/cpu.mjs';
import { wrk } from '../lib/wrk.mjs';

export const description = 'CPU time per warm invocation, by process (gateway, NATS, worker, function, wrk)';

/** Which part of the platform a process is, from its command line. */
function roleOf(comm, args) {
  if (comm === 'nats-server') return 'nats-server';
  if (comm === 'wrk') return 'wrk (load generator)';
  for (const s of ['gateway', 'scheduler', 'worker']) if (args.includes(`services/${s}/dist/main.js`)) return s;
  if (args.includes('runtime.mjs')) return 'function (node runtime)';
  return undefined;
}

/** CPU ticks so far per role, over the live processes. */
function cpuTicks() {
  const out = {};
  for (const line of execFileSync('ps', ['-eo', 'pid=,comm=,args='], { encoding: 'utf8' }).split('\n')) {
    const m = line.trim().match(/^(\d+)\s+(\S+)\s+(.*)$/);
    const role = m && roleOf(m[2], m[3]);
    if (role) out[role] = (out[role] ?? 0) + ticksOf(m[1]);
  }
  return out;
}

export async function run() {
  const p = await Platform.create();
  try {
    await p.buildBase();
    await p.buildNodeRuntime();
    await p.startAll('cpu-node');
    const res = await p.deployNode('noop', join(REPO, 'test/bench/fixtures/noop'), { concurrency: 64, maxInstances: 2 });
    if (res.status !== 201) throw new Error(`deploy failed: ${res.status} ${await res.text()}`);
    const load = { url: `${p.gatewayUrl}/v1/functions/noop/invoke`, body: '{}', headers: { authorization: `Bearer ${p.token}`, 'content-type': 'application/json' }, connections: 32 };
    await wrk({ ...load, seconds: 2 }); // warm-up: instances started, connections open
    const seconds = Number(process.env.BENCH_SECONDS ?? 5);
    // Sampled once wrk runs and again before it stops, so every process (wrk too) is measured
    // over the same steady stretch, which wrk's rate covers.
    const running = wrk({ ...load, seconds });
    await new Promise((r) => setTimeout(r, 200));
    const start = cpuTicks();
    await new Promise((r) => setTimeout(r, seconds * 1000 - 500));
    const end = cpuTicks();
    const result = await running;
    if (result.non2xx + result.errors) throw new Error(`${result.non2xx + result.errors} invocations failed`);
    const served = result.rps * (seconds - 0.5);
    console.log(`\nCPU per warm invocation at 32 connections (${result.rps.toFixed(0)} invocations/s over ${seconds} s)`);
    let total = 0;
    for (const [role, ticks] of Object.entries(end).sort((a, b) => b[1] - (start[b[0]] ?? 0) - (a[1] - (start[a[0]] ?? 0)))) {
      const us = ((ticks - (start[role] ?? 0)) * TICK_US) / served;
      total += us;
      console.log(`  ${role.padEnd(26)} ${us.toFixed(0).padStart(5)} µs`);
    }
    console.log(`  ${'all processes'.padEnd(26)} ${total.toFixed(0).padStart(5)} µs   (2 cores / this = ${(2e6 / total).toFixed(0)} invocations/s at most)`);
  } finally {
    await p.close();
  }
}
