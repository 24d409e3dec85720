import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { context, meter, propagation, startTelemetry, telemetryConfig, trace, tracer, type Telemetry } from './index.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createTcpServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** A stand-in OTLP/HTTP collector: records the path and JSON body of every export. */
async function collector(): Promise<{ url: string; received: Array<{ path: string; body: string }>; close(): Promise<void> }> {
  const received: Array<{ path: string; body: string }> = [];
  const srv: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, received, close: () => new Promise((r) => srv.close(() => r())) };
}

describe('telemetryConfig', () => {
  it('exports nothing and serves nothing unless configured', () => {
    const c = telemetryConfig('worker', {});
    expect(c).toMatchObject({ disabled: false, metricsExporters: [], tracesExporters: [], prometheus: undefined });
  });

  it('serves Prometheus metrics on SKIFF_METRICS_PORT, a service-specific port winning, on loopback by default', () => {
    expect(telemetryConfig('worker', { SKIFF_METRICS_PORT: '9100' }).prometheus).toEqual({ host: '127.0.0.1', port: 9100, from: 'SKIFF_METRICS_PORT' });
    const c = telemetryConfig('worker', { SKIFF_METRICS_PORT: '9100', SKIFF_WORKER_METRICS_PORT: '9101', SKIFF_METRICS_HOST: '0.0.0.0' });
    expect(c.metricsExporters).toEqual(['prometheus']);
    expect(c.prometheus).toEqual({ host: '0.0.0.0', port: 9101, from: 'SKIFF_WORKER_METRICS_PORT' });
    expect(() => telemetryConfig('worker', { SKIFF_METRICS_PORT: 'ninety' })).toThrow(/SKIFF_METRICS_PORT must be an integer/);
  });

  it('uses OTLP over HTTP when an endpoint is set, following the OTEL_* variables', () => {
    const c = telemetryConfig('gateway', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' });
    expect(c).toMatchObject({ metricsExporters: ['otlp'], tracesExporters: ['otlp'], otlpMetricsUrl: 'http://collector:4318/v1/metrics', otlpTracesUrl: 'http://collector:4318/v1/traces' });
    const own = telemetryConfig('gateway', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:4318/x', OTEL_METRICS_EXPORTER: 'none' });
    expect(own).toMatchObject({ metricsExporters: [], tracesExporters: ['otlp'], otlpTracesUrl: 'http://t:4318/x' });
    expect(telemetryConfig('gateway', { OTEL_SDK_DISABLED: 'true', SKIFF_METRICS_PORT: '9100' })).toMatchObject({ disabled: true, metricsExporters: [], prometheus: undefined });
    expect(() => telemetryConfig('gateway', { OTEL_METRICS_EXPORTER: 'otlp,statsd' })).toThrow(/unknown exporter "statsd"/);
    expect(() => telemetryConfig('gateway', { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL/);
  });
});

describe('startTelemetry', () => {
  let t: Telemetry | undefined;
  afterEach(async () => {
    await t?.shutdown();
    t = undefined;
  });

  it('serves recorded metrics as Prometheus text over HTTP, and stops serving on shutdown', async () => {
    const port = await freePort();
    t = await startTelemetry({ service: 'unit', env: { SKIFF_METRICS_PORT: String(port) } });
    expect(t.metricsUrl).toBe(`http://127.0.0.1:${port}/metrics`);
    meter('telemetry-test').createCounter('skiff.test.things', { unit: '{thing}', description: 'Things counted by the test' }).add(7, { kind: 'a' });
    meter('telemetry-test').createHistogram('skiff.test.duration', { unit: 's', advice: { explicitBucketBoundaries: [0.1, 1] } }).record(0.5);

    const res = await fetch(t.metricsUrl!);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/^skiff_test_things_total\{kind="a",otel_scope_name="telemetry-test"\} 7$/m);
    expect(text).toMatch(/^skiff_test_duration_bucket\{otel_scope_name="telemetry-test",le="1"\} 1$/m);
    expect(text).toMatch(/^target_info\{[^}]*service_name="skiff-unit"/m);

    await t.shutdown();
    await expect(fetch(t.metricsUrl!)).rejects.toThrow();
  });

  it('is set up once per process, and can start again after shutdown', async () => {
    t = await startTelemetry({ service: 'unit', env: {} });
    expect(await startTelemetry({ service: 'unit', env: {} })).toBe(t);
    await expect(startTelemetry({ service: 'other', env: {} })).rejects.toThrow(/already started for unit/);
    expect(t.metricsUrl).toBeUndefined();
    await t.shutdown();
    t = await startTelemetry({ service: 'other', env: {} });
    expect(t.service).toBe('other');
  });

  it('fails with the variable named when the metrics port is taken, and leaves nothing registered', async () => {
    const port = await freePort();
    const blocker = createTcpServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
    try {
      await expect(startTelemetry({ service: 'unit', env: { SKIFF_METRICS_PORT: String(port) } })).rejects.toThrow(/SKIFF_METRICS_PORT.*EADDRINUSE/);
    } finally {
      blocker.close();
    }
    t = await startTelemetry({ service: 'unit', env: {} });
    expect(t.metricsUrl).toBeUndefined();
  });

  it('pushes metrics and spans over OTLP/HTTP when an endpoint is set, flushing them on shutdown', async () => {
    const otlp = await collector();
    try {
      t = await startTelemetry({ service: 'unit', env: { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url } });
      meter('telemetry-test').createCounter('skiff.test.pushed').add(3);
      tracer('telemetry-test').startSpan('skiff.test.span').end();
      expect(otlp.received).toEqual([]);
      await t.shutdown();
      const metrics = otlp.received.filter((r) => r.path === '/v1/metrics');
      const traces = otlp.received.filter((r) => r.path === '/v1/traces');
      expect(metrics.length).toBeGreaterThan(0);
      expect(metrics.map((r) => r.body).join('')).toContain('skiff.test.pushed');
      expect(traces.map((r) => r.body).join('')).toContain('skiff.test.span');
    } finally {
      await otlp.close();
    }
  });

  it('propagates W3C trace context, recording nothing when no exporter is set', async () => {
    t = await startTelemetry({ service: 'unit', env: {} });
    const span = tracer('telemetry-test').startSpan('outer');
    expect(span.isRecording()).toBe(false);
    const headers: Record<string, string> = {};
    propagation.inject(trace.setSpan(context.active(), span), headers);
    span.end();
    const { traceId, spanId } = span.spanContext();
    expect(headers.traceparent).toBe(`00-${traceId}-${spanId}-00`);
    const extracted = trace.getSpanContext(propagation.extract(context.active(), headers));
    expect(extracted).toMatchObject({ traceId, spanId, isRemote: true });
  });
});
