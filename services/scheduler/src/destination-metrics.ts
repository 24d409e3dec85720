import { meter, type Counter, type Meter } from '@skiff/telemetry';
import type { DestinationKind } from '@skiff/events';

/**
 * Sends of outcome events to destinations, by result: `delivered`, `retried` (failed, offered
 * again) and `dropped` (failed its last attempt, removed). Listed in docs/telemetry.md.
 */
export class DestinationMetrics {
  private readonly deliveries: Counter;

  /** Uses the process's MeterProvider by default, so create it after startTelemetry. */
  constructor(m: Meter = meter('@skiff/scheduler')) {
    this.deliveries = m.createCounter('skiff.destination.deliveries', { unit: '{event}', description: 'Outcome events sent to a destination, by outcome (delivered, retried, dropped) and kind (subject, url)' });
  }

  delivered(kind: DestinationKind): void {
    this.deliveries.add(1, { 'skiff.destination.outcome': 'delivered', 'skiff.destination.kind': kind });
  }

  retried(kind: DestinationKind): void {
    this.deliveries.add(1, { 'skiff.destination.outcome': 'retried', 'skiff.destination.kind': kind });
  }

  dropped(kind: DestinationKind): void {
    this.deliveries.add(1, { 'skiff.destination.outcome': 'dropped', 'skiff.destination.kind': kind });
  }
}
