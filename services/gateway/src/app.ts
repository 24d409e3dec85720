import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { CALL_ID_PATTERN, newCallId } from '@skiff/contracts';
import { NodeDirectory } from '@skiff/placement';
import { type Logger } from '@skiff/service-kit';
import type { ImageStore } from '@skiff/image';
import type { Telemetry } from '@skiff/telemetry';
import { authenticate } from './auth.js';
import type { GatewayConfig } from './config.js';
import { bodyDeadline, clientErrorHandler, limitConnections, serverTimeouts } from './connections.js';
import { AsyncInvocations } from './async-invocations.js';
import { HealthWatch } from './health.js';
import { TriggerSync } from './triggers.js';
import { DurableTriggerStreams } from './durable-triggers.js';
import { Invoker } from './invoker.js';
import { traceRequests } from './tracing.js';
import { measureRequests } from './request-metrics.js';
import { Prewarmer } from './prewarm.js';
import type { Messaging } from './messaging.js';
import { loadApi, registerOperations } from './openapi.js';
import { installProblemHandlers } from './problems.js';
import type { Registry } from './registry.js';
import { registryApi } from './registry-api/plugin.js';
import { functionHandlers } from './routes/functions.js';
import { imageHandlers, streamImageArchives } from './routes/images.js';
import { invocationHandlers } from './routes/invocations.js';
import { invokeHandlers } from './routes/invoke.js';
import { systemHandlers } from './routes/system.js';

export interface GatewayDeps {
  config: GatewayConfig;
  registry: Registry;
  store: ImageStore;
  messaging: Messaging;
  log: Logger;
  /** Answers GET /metrics with the process's Prometheus text (Telemetry.serveMetrics). */
  serveMetrics: Telemetry['serveMetrics'];
}

/** Builds the gateway without listening, so tests can use inject() and main() can listen. */
export async function build(deps: GatewayDeps): Promise<FastifyInstance> {
  const { config, registry, store, messaging, log, serveMetrics } = deps;
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast keeps the instance's default logger type.
    loggerInstance: log as FastifyBaseLogger,
    // Per-request lines cost time on the hot path; errors are logged by the problem handler.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'callId' }),
    bodyLimit: config.maxBodyBytes,
    ...serverTimeouts(config),
    clientErrorHandler: clientErrorHandler(log),
    requestIdHeader: false,
    // The call id is set here, at the edge, unless the client sent a usable one.
    genReqId: (req) => {
      const given = req.headers['skiff-call-id'];
      return typeof given === 'string' && CALL_ID_PATTERN.test(given) ? given : newCallId();
    },
  });
  installProblemHandlers(app, log);
  traceRequests(app);
  measureRequests(app);
  limitConnections(app.server, config, log);
  app.addHook('onRequest', bodyDeadline(config, log));
  // The gateway's own view of the worker nodes, for placing synchronous invocations itself.
  const nodes = new NodeDirectory(messaging.nc, { missedHeartbeats: config.missedHeartbeats, log });
  nodes.start();
  const invoker = new Invoker(messaging, nodes, log);
  // Starts stream functions' minInstances at deploy and restores them when workers come and go.
  const prewarmer = new Prewarmer(messaging, nodes, registry, { periodMs: config.minInstancesCheckMs, missedHeartbeats: config.missedHeartbeats }, log);
  prewarmer.start();
  const invocations = new AsyncInvocations(messaging, config.eventLimits, log);
  const durable = new DurableTriggerStreams(messaging, config.eventLimits, config.maxBodyBytes, log);
  const triggers = new TriggerSync(messaging, registry, durable, log);
  invocations.start(() => triggers.ready());
  const health = new HealthWatch(messaging, log);
  health.start();
  app.addHook('onClose', async () => (prewarmer.stop(), invoker.close(), nodes.stop(), invocations.close(), triggers.close(), health.close()));
  const api = await loadApi();
  streamImageArchives(app, config.maxArchiveBytes);
  registerOperations(
    app,
    api,
    {
      ...systemHandlers(api, messaging, registry, health, serveMetrics),
      ...functionHandlers(registry, store, messaging, prewarmer, invocations, triggers, durable, config.defaultTimeoutMs),
      ...invokeHandlers(registry, invoker, invocations),
      ...invocationHandlers(registry, invocations),
      ...imageHandlers(store, registry, config),
    },
    (request) => {
      authenticate(registry, request.headers.authorization);
    },
  );
  // The OCI Distribution API (/v2): not in the OpenAPI document, since names contain slashes.
  await app.register(registryApi, { registry, store, config, log });
  return app;
}
