// Invoke end to end (HTTP → gateway → NATS → scheduler → worker → container → back) beside a
// bare Fastify server echoing the same body, alternating, in the same run.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { once } from 'node:events';
import { Platform, REPO, freePort } from '@skiff/testkit';
import { alternate, post, report, summarize } from '../lib/stats.mjs';

export const description = 'echo invoke through every hop vs a bare Fastify echo';

export async function run({ runs }) {
  const p = await Platform.create();
  const port = await freePort();
  const peer = spawn(process.execPath, [join(REPO, 'test/bench/peers/fastify-echo.mjs'), String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await once(peer.stdout, 'data');
    await p.buildBase();
    await p.startAll('bench-node');
    const res = await p.deploy('echo', join(REPO, 'functions/echo'), ['/bin/sh', '/function/handler.sh']);
    if (res.status !== 201) throw new Error(`deploy failed: ${res.status} ${await res.text()}`);
    const body = 'hello';
    const auth = { authorization: `Bearer ${p.token}` };
    const skiff = async () => {
      const r = await post(`${p.gatewayUrl}/v1/functions/echo/invoke`, body, auth);
      if (r.body !== body) throw new Error(`skiff answered ${r.status} ${r.body}`);
    };
    const fastify = async () => {
      const r = await post(`http://127.0.0.1:${port}/echo`, body);
      if (r.body !== body) throw new Error(`fastify answered ${r.status} ${r.body}`);
    };
    // Warm-up: the first invoke unpacks the image; connections get established.
    for (let i = 0; i < 5; i++) await skiff(), await fastify();
    const samples = await alternate(runs, { 'skiff echo (exec, new container)': skiff, 'bare fastify echo': fastify });
    report(`invoke: ${runs} alternating runs, one connection each, body "${body}"`, Object.entries(samples).map(([n, s]) => summarize(n, s)), 'bare fastify echo');
  } finally {
    peer.kill();
    await p.close();
  }
}
