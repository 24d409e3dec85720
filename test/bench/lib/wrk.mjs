// HTTP load from wrk (a C client): at one connection a Node client adds several hundred
// microseconds of its own per request, more than the floor being measured.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const luaString = (s) => JSON.stringify(s); // JSON string escapes are valid Lua escapes here

/**
 * POSTs `body` to `url` with `connections` connections for `seconds`, each connection pausing
 * `pauseMs` between an answer and its next request (untimed). Returns latency percentiles and
 * the minimum in ms, requests per second and the count of non-2xx answers or socket errors.
 */
export function wrk({ url, body, headers = {}, connections = 1, threads = 1, seconds = 2, pauseMs = 0 }) {
  const script = [
    'wrk.method = "POST"',
    `wrk.body = ${luaString(body)}`,
    ...Object.entries(headers).map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`),
    ...(pauseMs > 0 ? [`delay = function() return ${Math.round(pauseMs)} end`] : []),
    'done = function(s, latency)',
    '  local e = s.errors',
    '  io.write(string.format("RESULT %d %d %d %d %d %d %d\\n", latency:percentile(50), latency:percentile(99),',
    '    s.requests, s.duration, e.status, e.connect + e.read + e.write + e.timeout, latency.min))',
    'end',
  ].join('\n');
  const dir = mkdtempSync(join(tmpdir(), 'skiff-wrk-'));
  const file = join(dir, 'post.lua');
  writeFileSync(file, script);
  const args = ['-t', String(threads), '-c', String(connections), '-d', `${seconds}s`, '-s', file, url];
  return new Promise((resolve, reject) => {
    execFile('wrk', args, (err, stdout) => {
      rmSync(dir, { recursive: true, force: true });
      if (err) return reject(err);
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (!line) return reject(new Error(`wrk printed no result:\n${stdout}`));
      const [p50, p99, requests, durationUs, non2xx, errors, min] = line.split(' ').slice(1).map(Number);
      resolve({ p50: p50 / 1000, p99: p99 / 1000, min: min / 1000, rps: requests / (durationUs / 1e6), requests, non2xx, errors });
    });
  });
}
