export type Env = Record<string, string | undefined>;

export type MetricsExporter = 'otlp' | 'prometheus' | 'console';
export type TracesExporter = 'otlp' | 'console';

export interface TelemetryConfig {
  /** OTEL_SDK_DISABLED=true: nothing is set up; meters and tracers stay no-ops. */
  readonly disabled: boolean;
  readonly metricsExporters: readonly MetricsExporter[];
  readonly tracesExporters: readonly TracesExporter[];
  /** OTLP/HTTP URLs (per signal); undefined leaves the exporter's default (localhost:4318). */
  readonly otlpMetricsUrl: string | undefined;
  readonly otlpTracesUrl: string | undefined;
  /** Prometheus text endpoint, when `metricsExporters` includes 'prometheus'. */
  readonly prometheus: { readonly host: string; readonly port: number; /** The variable that set the port. */ readonly from: string } | undefined;
  /** OTEL_METRIC_EXPORT_INTERVAL / _TIMEOUT, for push exporters (otlp, console). */
  readonly exportIntervalMs: number;
  readonly exportTimeoutMs: number;
  /** OTEL_LOG_LEVEL: where the SDK's own diagnostics go (stderr), off unless set. */
  readonly logLevel: string | undefined;
}

const DEFAULT_PROMETHEUS_PORT = 9464;

/** The spec's rule: a signal's own endpoint is used as is; the shared one gets /v1/<signal> appended. */
function otlpUrl(env: Env, signal: 'metrics' | 'traces'): string | undefined {
  const own = env[`OTEL_EXPORTER_OTLP_${signal.toUpperCase()}_ENDPOINT`]?.trim();
  if (own) return own;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  return base ? `${base.replace(/\/+$/, '')}/v1/${signal}` : undefined;
}

function int(env: Env, name: string, min: number, max: number): number | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  return n;
}

/** A comma-separated exporter list; undefined when the variable is unset or empty. */
function list<T extends string>(env: Env, name: string, known: readonly T[]): T[] | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  const names = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.includes('none')) return [];
  for (const n of names) {
    if (!(known as readonly string[]).includes(n)) throw new Error(`${name} lists unknown exporter "${n}" (known: ${[...known, 'none'].join(', ')})`);
  }
  return [...new Set(names)] as T[];
}

/**
 * Telemetry settings from the environment, parsed once at start-up. The OTEL_* variables keep
 * their standard meaning, except that nothing is exported unless something is configured:
 * OTLP is used when OTEL_*_EXPORTER says so, or when an OTLP endpoint is set and the exporter
 * variable is not. Prometheus text metrics are served when SKIFF_<SERVICE>_METRICS_PORT or
 * SKIFF_METRICS_PORT is set (or OTEL_METRICS_EXPORTER lists prometheus).
 */
export function telemetryConfig(service: string, env: Env): TelemetryConfig {
  const disabled = env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true';
  const protocol = env.OTEL_EXPORTER_OTLP_PROTOCOL?.trim();
  if (protocol && !protocol.startsWith('http/')) throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL "${protocol}" is not supported: Skiff exports OTLP over HTTP (http/json)`);

  const ownPortVar = `SKIFF_${service.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_METRICS_PORT`;
  const ownPort = int(env, ownPortVar, 1, 65_535);
  const port = ownPort ?? int(env, 'SKIFF_METRICS_PORT', 1, 65_535);
  const otelPort = int(env, 'OTEL_EXPORTER_PROMETHEUS_PORT', 1, 65_535);
  const otlpMetricsUrl = otlpUrl(env, 'metrics');
  const otlpTracesUrl = otlpUrl(env, 'traces');

  const metrics = list(env, 'OTEL_METRICS_EXPORTER', ['otlp', 'prometheus', 'console'] as const) ?? (otlpMetricsUrl ? ['otlp' as const] : []);
  if (port !== undefined && !metrics.includes('prometheus')) metrics.push('prometheus');
  const traces = list(env, 'OTEL_TRACES_EXPORTER', ['otlp', 'console'] as const) ?? (otlpTracesUrl ? ['otlp' as const] : []);

  const prometheus = metrics.includes('prometheus')
    ? {
        host: env.SKIFF_METRICS_HOST?.trim() || env.OTEL_EXPORTER_PROMETHEUS_HOST?.trim() || '127.0.0.1',
        port: port ?? otelPort ?? DEFAULT_PROMETHEUS_PORT,
        from: ownPort !== undefined ? ownPortVar : port !== undefined ? 'SKIFF_METRICS_PORT' : otelPort !== undefined ? 'OTEL_EXPORTER_PROMETHEUS_PORT' : 'OTEL_METRICS_EXPORTER (default port)',
      }
    : undefined;

  const exportIntervalMs = int(env, 'OTEL_METRIC_EXPORT_INTERVAL', 100, 86_400_000) ?? 60_000;
  return Object.freeze({
    disabled,
    metricsExporters: Object.freeze(disabled ? [] : metrics),
    tracesExporters: Object.freeze(disabled ? [] : traces),
    otlpMetricsUrl,
    otlpTracesUrl,
    prometheus: disabled ? undefined : prometheus,
    exportIntervalMs,
    // The SDK refuses a timeout longer than the interval.
    exportTimeoutMs: Math.min(int(env, 'OTEL_METRIC_EXPORT_TIMEOUT', 100, 86_400_000) ?? 30_000, exportIntervalMs),
    logLevel: env.OTEL_LOG_LEVEL?.trim() || undefined,
  });
}
