// The peers of the cold start rows: what a container and a Node.js process cost by themselves,
// measured in the same run as the platform's cold starts.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJson, heartbeatSchema, SUBJECTS } from '@skiff/contracts';

/**
 * The launcher's own go-to-status time for one exec container, as the worker runs it: a
 * `skiff-launch run --wait-fd 3 --status-fd 3` started ahead (untimed, with `pauseMs` to settle,
 * as the worker's launchers wait for their invocation), config.json written (untimed), then timed
 * from the go byte and the body on stdin to the status and end of file on stdout and stderr:
 * what the worker waits for before it answers.
 */
export function launcherGoToStatus({ launcher, spec, body, pauseMs }) {
  const base = mkdtempSync(join(tmpdir(), 'skiff-bench-go-'));
  let n = 0;
  const once = async () => {
    const id = `go-${process.pid}-${++n}`;
    const bundle = join(base, id);
    mkdirSync(bundle);
    // The launcher's default state root, as the worker runs it.
    const child = spawn(launcher, ['run', '--wait-fd', '3', '--status-fd', '3', '--bundle', bundle, id], { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    const control = child.stdio[3];
    let status = '';
    let stderr = '';
    let outOpen = 2;
    const done = new Promise((resolve, reject) => {
      const check = () => {
        if (outOpen > 0 || !status.includes('\n')) return;
        if (status === '0\n') resolve();
        else reject(new Error(`launcher answered ${JSON.stringify(status)}: ${stderr}`));
      };
      control.on('data', (d) => ((status += d), check()));
      control.on('close', () => (status.includes('\n') ? check() : reject(new Error(`launcher closed its status fd without a status: ${stderr}`))));
      child.stdout.on('data', () => {});
      child.stdout.on('end', () => (outOpen--, check()));
      child.stderr.on('data', (d) => (stderr += d));
      child.stderr.on('end', () => (outOpen--, check()));
    });
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
    await new Promise((r) => setTimeout(r, pauseMs));
    const t0 = performance.now();
    child.stdin.end(body);
    control.end('g');
    await done;
    const ms = performance.now() - t0;
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    rmSync(bundle, { recursive: true, force: true });
    return ms;
  };
  return { once, close: () => rmSync(base, { recursive: true, force: true }) };
}

/** One `node -e 0`, timed by hyperfine (no shell, and none of this process's own fork in the time), in ms. */
export function bareNode(node = process.execPath) {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-node-'));
  const out = join(dir, 'h.json');
  return new Promise((resolve, reject) => {
    execFile('hyperfine', ['-N', '--runs', '1', '--warmup', '0', '--style', 'none', '--export-json', out, `${node} -e 0`], (err) => {
      try {
        if (err) return reject(err);
        resolve(JSON.parse(readFileSync(out, 'utf8')).results[0].times[0] * 1000);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

/**
 * Resolves once a heartbeat of `nodeId` reports its stem cells all started and waiting (so a
 * function deployed now cannot find one still booting, and a warm start cannot pass for a cold
 * one), or at once when the worker keeps none. Rejects after `ms`.
 */
export async function stemsSettled(nc, nodeId, ms = 30_000) {
  const sub = nc.subscribe(SUBJECTS.heartbeat);
  const timer = setTimeout(() => sub.unsubscribe(), ms);
  try {
    for await (const m of sub) {
      const hb = decodeJson(heartbeatSchema, m.data, 'heartbeat');
      if (hb.nodeId !== nodeId) continue;
      const stems = hb.stems;
      if (!stems || (stems.starting === 0 && stems.waiting >= stems.target)) return stems ?? { waiting: 0, starting: 0, target: 0 };
    }
    throw new Error(`no heartbeat of ${nodeId} reported its stem cells settled within ${ms} ms`);
  } finally {
    clearTimeout(timer);
    sub.unsubscribe();
  }
}
