import type { FastifyInstance } from 'fastify';
import { meter } from '@skiff/telemetry';

/** Seconds, from /healthz (tens of microseconds) to a sync call at its longest timeout. */
const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

/**
 * `http.server.request.duration` (OpenTelemetry HTTP semantic conventions) for every request the
 * gateway answers, by method, route (the template, never the path: bounded) and status.
 */
export function measureRequests(app: FastifyInstance): void {
  const duration = meter('@skiff/gateway').createHistogram('http.server.request.duration', {
    unit: 's',
    description: 'Time from a request arriving to its answer being sent, by method, route and status',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  });
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url;
    duration.record(reply.elapsedTime / 1000, {
      'http.request.method': request.method,
      ...(route ? { 'http.route': route } : {}),
      'http.response.status_code': reply.statusCode,
    });
    done();
  });
}
