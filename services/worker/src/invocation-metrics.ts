import { meter, type Counter, type Histogram, type Meter } from '@skiff/telemetry';

/** Seconds, from a warm call (under a millisecond) to the longest timeout. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

export type Trigger = 'http' | 'pubsub' | 'timer';

export interface InvocationOutcome {
  fn: string;
  version: number;
  trigger: Trigger;
  /** The Skiff error code of a failed invocation; undefined when it succeeded. */
  error: string | undefined;
  coldStart: boolean;
  seconds: number;
}

export interface InstanceCounts {
  fn: string;
  state: string;
  count: number;
}

/**
 * The worker's invocation metrics, after the OpenTelemetry FaaS semantic conventions
 * (faas.invocations, faas.errors, faas.coldstarts, faas.invoke_duration, faas.init_duration),
 * with the function and version as attributes since one worker runs many; and its instances
 * by state. Names, units and attributes are listed in docs/telemetry.md; keep the two in step.
 */
export class InvocationMetrics {
  private readonly invocations: Counter;
  private readonly errors: Counter;
  private readonly coldStarts: Counter;
  private readonly duration: Histogram;
  private readonly initDuration: Histogram;

  /** Uses the process's MeterProvider by default, so create it after startTelemetry. */
  constructor(instances: () => InstanceCounts[], m: Meter = meter('@skiff/worker')) {
    this.invocations = m.createCounter('faas.invocations', { unit: '{invocation}', description: 'Invocations the worker ran, by function, version, trigger and outcome' });
    this.errors = m.createCounter('faas.errors', { unit: '{invocation}', description: 'Invocations that failed, by function, version, trigger and error code' });
    this.coldStarts = m.createCounter('faas.coldstarts', { unit: '{invocation}', description: 'Invocations that waited for their instance to start (every exec invocation)' });
    this.duration = m.createHistogram('faas.invoke_duration', { unit: 's', description: 'Time from the worker taking an invocation to its answer, a cold start included', advice: { explicitBucketBoundaries: DURATION_BUCKETS } });
    this.initDuration = m.createHistogram('faas.init_duration', { unit: 's', description: 'Time for a stream instance to start until it serves (container or stem cell, runtime ready)', advice: { explicitBucketBoundaries: DURATION_BUCKETS } });
    m.createObservableGauge('skiff.instances', { unit: '{instance}', description: 'Stream instances on the worker, by function and state' }).addCallback((r) => {
      for (const i of instances()) r.observe(i.count, { 'faas.name': i.fn, 'skiff.instance.state': i.state });
    });
  }

  invoked(o: InvocationOutcome): void {
    const attrs = { 'faas.name': o.fn, 'faas.version': String(o.version), 'faas.trigger': o.trigger };
    this.invocations.add(1, { ...attrs, 'skiff.outcome': o.error ? 'failed' : 'succeeded' });
    if (o.error) this.errors.add(1, { ...attrs, 'error.type': o.error });
    if (o.coldStart) this.coldStarts.add(1, attrs);
    this.duration.record(o.seconds, attrs);
  }

  instanceStarted(fn: string, version: number, seconds: number): void {
    this.initDuration.record(seconds, { 'faas.name': fn, 'faas.version': String(version) });
  }
}
