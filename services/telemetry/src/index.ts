export { startTelemetry, meter, tracer, type Telemetry, type TelemetryOptions } from './telemetry.js';
export { telemetryConfig, type TelemetryConfig, type MetricsExporter, type TracesExporter, type Env } from './config.js';
// The API surface services use, so they depend on @skiff/telemetry alone.
export { context, propagation, trace, ROOT_CONTEXT, SpanKind, SpanStatusCode, ValueType } from '@opentelemetry/api';
export type { Attributes, Counter, Histogram, Meter, Span, Tracer, UpDownCounter, TextMapGetter, TextMapSetter } from '@opentelemetry/api';
