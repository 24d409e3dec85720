import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Platform, freePort, stopProcess, waitUntil } from '@skiff/testkit';

/**
 * Metrics as Prometheus sees them: a real Prometheus (Debian's package), started by the test on
 * a free port, scrapes the gateway's /metrics (with the admin token) and the scheduler's and
 * worker's metrics ports each second; after a known number of invocations, PromQL through its
 * HTTP API returns the counts.
 */
describe('metrics scraped by Prometheus', () => {
  let p: Platform;
  let prometheus: ChildProcess | undefined;
  let promUrl = '';
  const promDir = mkdtempSync(join(tmpdir(), 'skiff-prometheus-'));

  /** The value of an instant PromQL query that yields one sample; undefined while it yields none. */
  const query = async (promql: string): Promise<number | undefined> => {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; data: { result: { value: [number, string] }[] } };
    expect(body.status, promql).toBe('success');
    return body.data.result.length === 1 ? Number(body.data.result[0]!.value[1]) : undefined;
  };
  const eventually = (promql: string, want: number) => waitUntil(async () => (await query(promql)) === want, `${promql} == ${want}`, 30_000).then(() => query(promql));

  beforeAll(async () => {
    p = await Platform.create();
    await p.buildBase();
    await p.buildNodeRuntime();
    const [schedulerPort, workerPort, promPort] = [await freePort(), await freePort(), await freePort()];
    p.start('scheduler', { SKIFF_METRICS_PORT: String(schedulerPort) });
    p.start('worker', { SKIFF_NODE_ID: 'node-a', SKIFF_METRICS_PORT: String(workerPort) }, 'worker-node-a');
    await p.startGateway();
    await p.waitForNodes(['node-a']);
    const target = (port: number | string) => `['127.0.0.1:${port}']`;
    writeFileSync(
      join(promDir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        'scrape_configs:',
        `  - { job_name: gateway, metrics_path: /metrics, authorization: { credentials: '${p.token}' }, static_configs: [{ targets: ${target(new URL(p.gatewayUrl).port)} }] }`,
        `  - { job_name: scheduler, static_configs: [{ targets: ${target(schedulerPort)} }] }`,
        `  - { job_name: worker, static_configs: [{ targets: ${target(workerPort)} }] }`,
        '',
      ].join('\n'),
    );
    prometheus = spawn('prometheus', [`--config.file=${join(promDir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
    promUrl = `http://127.0.0.1:${promPort}`;
    await waitUntil(async () => (await fetch(`${promUrl}/-/ready`).catch(() => undefined))?.ok === true, 'prometheus ready', 60_000);
    await eventually('sum(up)', 3);
  }, 180_000);
  afterAll(async () => {
    if (prometheus) await stopProcess(prometheus);
    await p?.close();
    rmSync(promDir, { recursive: true, force: true });
  });

  it('counts invocations by function and outcome, cold starts, errors, init and request durations, and instances', async () => {
    const counted = mkdtempSync(join(tmpdir(), 'skiff-counted-'));
    writeFileSync(join(counted, 'index.mjs'), 'export default async (event) => event;\n');
    expect((await p.deployNode('counted', counted)).status).toBe(201);
    const broken = mkdtempSync(join(tmpdir(), 'skiff-broken-'));
    writeFileSync(join(broken, 'handler.sh'), 'echo "failing on purpose" >&2\nexit 3\n');
    expect((await p.deploy('broken', broken, ['/bin/sh', '/function/handler.sh'])).status).toBe(201);
    for (let i = 0; i < 5; i++) expect((await p.api('POST', '/v1/functions/counted/invoke', `{"i":${i}}`, { 'content-type': 'application/json' })).status).toBe(200);
    for (let i = 0; i < 2; i++) expect((await p.api('POST', '/v1/functions/broken/invoke', 'x')).status).toBe(502);

    expect(await eventually('sum(faas_invocations_total{faas_name="counted",faas_version="1",faas_trigger="http",skiff_outcome="succeeded"})', 5)).toBe(5);
    expect(await eventually('sum(faas_coldstarts_total{faas_name="counted"})', 1)).toBe(1);
    expect(await eventually('sum(faas_invoke_duration_count{faas_name="counted"})', 5)).toBe(5);
    expect(await eventually('sum(faas_init_duration_count{faas_name="counted"})', 1)).toBe(1);
    expect(await eventually('sum(faas_invocations_total{faas_name="broken",skiff_outcome="failed"})', 2)).toBe(2);
    expect(await eventually('sum(faas_errors_total{faas_name="broken",error_type="SKIFF_FN_FAILED"})', 2)).toBe(2);
    expect(await eventually('sum(faas_coldstarts_total{faas_name="broken"})', 2)).toBe(2);
    expect(await eventually('sum(skiff_instances{faas_name="counted",skiff_instance_state="idle"})', 1)).toBe(1);
    // The gateway's own, through /metrics with the token: 5 answered 200, 2 answered 502.
    expect(await eventually('sum(http_server_request_duration_count{job="gateway",http_route="/v1/functions/:name/invoke",http_response_status_code="200"})', 5)).toBe(5);
    expect(await eventually('sum(http_server_request_duration_count{job="gateway",http_route="/v1/functions/:name/invoke",http_response_status_code="502"})', 2)).toBe(2);
  });

  it("refuses the gateway's /metrics without the token", async () => {
    expect((await fetch(`${p.gatewayUrl}/metrics`)).status).toBe(401);
    const res = await fetch(`${p.gatewayUrl}/metrics`, { headers: { authorization: `Bearer ${p.token}` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('http_server_request_duration_bucket');
  });
});
