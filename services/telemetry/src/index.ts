export { startTelemetry, meter, tracer, type Telemetry, type TelemetryOptions } from './telemetry.js';
export { carrierOf, contextFrom, failed, under, type TraceCarrier } from './carrier.js';
export { telemetryConfig, type TelemetryConfig, type MetricsExporter, type TracesExporter, type Env } from './config.js';
// The API surface services use, so they depend on @skiff/telemetry alone.
export { context, propagation, trace, ROOT_CONTEXT, SpanKind, SpanStatusCode, ValueType } from '@opentelemetry/api';
export type { Attributes, Context, Counter, Histogram, Meter, Span, Tracer, UpDownCounter, TextMapGetter, TextMapSetter } from '@opentelemetry/api';
