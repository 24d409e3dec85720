import type { IncomingMessage, ServerResponse } from 'node:http';
import { context, diag, DiagConsoleLogger, metrics, propagation, trace, type Attributes, type Meter, type Tracer } from '@opentelemetry/api';
import { CompositePropagator, diagLogLevelFromString, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { ConsoleMetricExporter, MeterProvider, PeriodicExportingMetricReader, type IMetricReader } from '@opentelemetry/sdk-metrics';
import { AlwaysOffSampler, BatchSpanProcessor, ConsoleSpanExporter, NodeTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { telemetryConfig, type Env, type TelemetryConfig } from './config.js';

export interface TelemetryOptions {
  /** The Skiff service: 'gateway', 'scheduler', 'worker', …; service.name becomes `skiff-<service>`. */
  service: string;
  /** More resource attributes, e.g. service.instance.id. OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME still win. */
  attributes?: Attributes;
  /** Default: process.env. (The OTLP exporters read their endpoint, headers and timeouts from process.env.) */
  env?: Env;
  /**
   * Keep a Prometheus reader whose text the service serves on a route of its own (the gateway's
   * /metrics) through `Telemetry.serveMetrics`, whether or not a metrics port is configured.
   */
  metricsRoute?: boolean;
}

export interface Telemetry {
  readonly service: string;
  readonly config: TelemetryConfig;
  /** Where Prometheus text metrics are served, when they are. */
  readonly metricsUrl: string | undefined;
  /**
   * With `metricsRoute`: answers a request with the Prometheus text of this process's metrics
   * (empty when telemetry is disabled).
   */
  serveMetrics(req: IncomingMessage, res: ServerResponse): void;
  /** Exports what is pending now (push exporters). */
  forceFlush(): Promise<void>;
  /** Flushes, stops exporters and the metrics endpoint, and unregisters the SDK. Safe to call twice. */
  shutdown(): Promise<void>;
}

/** Shutdown waits at most this long for exporters, so a dead collector cannot hold a service's exit. */
const SHUTDOWN_TIMEOUT_MS = 3_000;

interface Active {
  service: string;
  telemetry: Promise<Telemetry>;
}

let active: Active | undefined;

/**
 * Sets up OpenTelemetry once for this process: a MeterProvider and a TracerProvider registered
 * with @opentelemetry/api, W3C trace-context and baggage propagation, and the exporters the
 * environment asks for (see telemetryConfig). Nothing is exported and no port is opened
 * unless configured. Call it before creating meters: instruments made earlier stay no-ops.
 * Fails (with the variable's name) when the configuration is invalid or the metrics port is taken.
 */
export function startTelemetry(opts: TelemetryOptions): Promise<Telemetry> {
  if (active) {
    if (active.service !== opts.service) return Promise.reject(new Error(`telemetry is already started for ${active.service}, not ${opts.service}`));
    return active.telemetry;
  }
  // Only the handle of the current setup may unregister the globals.
  const release = (): void => {
    if (active !== entry) return;
    active = undefined;
    unregister();
  };
  const entry: Active = { service: opts.service, telemetry: start(opts, release) };
  active = entry;
  entry.telemetry.catch(release);
  return entry.telemetry;
}

async function start(opts: TelemetryOptions, release: () => void): Promise<Telemetry> {
  const config = telemetryConfig(opts.service, opts.env ?? process.env);
  if (config.disabled) {
    const serveMetrics = (_req: IncomingMessage, res: ServerResponse) => void res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end('# telemetry is disabled (OTEL_SDK_DISABLED)\n');
    return { service: opts.service, config, metricsUrl: undefined, serveMetrics, forceFlush: async () => undefined, shutdown: async () => release() };
  }
  if (config.logLevel) diag.setLogger(new DiagConsoleLogger(), { logLevel: diagLogLevelFromString(config.logLevel) });

  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: `skiff-${opts.service}`, ...opts.attributes }))
    .merge(detectResources({ detectors: [envDetector] }));

  const readers: IMetricReader[] = [];
  let prometheus: PrometheusExporter | undefined;
  for (const name of config.metricsExporters) {
    if (name === 'prometheus') {
      prometheus = new PrometheusExporter({ host: config.prometheus!.host, port: config.prometheus!.port, preventServerStart: true });
      readers.push(prometheus);
    } else {
      const exporter = name === 'otlp' ? new OTLPMetricExporter({ url: config.otlpMetricsUrl }) : new ConsoleMetricExporter();
      readers.push(new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: config.exportIntervalMs, exportTimeoutMillis: config.exportTimeoutMs }));
    }
  }
  // The route's reader: the port's exporter when there is one, else one that opens no port.
  let routeExporter = prometheus;
  if (opts.metricsRoute && !routeExporter) {
    routeExporter = new PrometheusExporter({ preventServerStart: true });
    readers.push(routeExporter);
  }
  const spanProcessors: SpanProcessor[] = config.tracesExporters.map((name) => new BatchSpanProcessor(name === 'otlp' ? new OTLPTraceExporter({ url: config.otlpTracesUrl }) : new ConsoleSpanExporter()));

  const meterProvider = new MeterProvider({ resource, readers });
  // With no exporter, spans are not recorded (nobody would read them) but still get ids, so trace
  // context goes on from service to service and to the function as it does with one.
  const tracerProvider = new NodeTracerProvider({ resource, spanProcessors, ...(spanProcessors.length === 0 ? { sampler: new AlwaysOffSampler() } : {}) });
  metrics.setGlobalMeterProvider(meterProvider);
  tracerProvider.register({
    propagator: new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  });

  let stopped: Promise<void> | undefined;
  const shutdown = (): Promise<void> =>
    (stopped ??= (async () => {
      await withTimeout(Promise.allSettled([meterProvider.shutdown({ timeoutMillis: SHUTDOWN_TIMEOUT_MS }), tracerProvider.shutdown()]), SHUTDOWN_TIMEOUT_MS);
      release();
    })());

  let metricsUrl: string | undefined;
  if (prometheus) {
    const { host, port, from } = config.prometheus!;
    try {
      await prometheus.startServer();
    } catch (err) {
      await shutdown();
      throw new Error(`cannot serve metrics on ${host}:${port} (${from}): ${(err as Error).message}`, { cause: err });
    }
    metricsUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`;
  }

  return {
    service: opts.service,
    config,
    metricsUrl,
    serveMetrics: (req, res) => {
      if (routeExporter) routeExporter.getMetricsRequestHandler(req, res);
      else res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are not served on a route by this service\n');
    },
    forceFlush: async () => {
      await Promise.allSettled([meterProvider.forceFlush(), tracerProvider.forceFlush()]);
    },
    shutdown,
  };
}

/** Unregisters everything from @opentelemetry/api, so a later startTelemetry starts afresh. */
function unregister(): void {
  metrics.disable();
  trace.disable();
  propagation.disable();
  context.disable();
  diag.disable();
}

async function withTimeout(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise((resolve) => (timer = setTimeout(resolve, ms).unref()))]);
  clearTimeout(timer);
}

/** A meter from the process's MeterProvider (a no-op one until startTelemetry ran). */
export function meter(name: string, version?: string): Meter {
  return metrics.getMeter(name, version);
}

/** A tracer from the process's TracerProvider (spans are dropped until startTelemetry ran). */
export function tracer(name: string, version?: string): Tracer {
  return trace.getTracer(name, version);
}
