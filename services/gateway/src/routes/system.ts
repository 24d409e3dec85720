import { RequestError } from '@nats-io/transport-node';
import { SUBJECTS, SkiffError, decodeJson, nodeTableSchema } from '@skiff/contracts';
import type { OpenAPIBackend } from 'openapi-backend';
import type { Telemetry } from '@skiff/telemetry';
import type { HealthWatch } from '../health.js';
import type { Messaging } from '../messaging.js';
import type { Handlers } from '../openapi.js';
import type { Registry } from '../registry.js';
import { authenticate } from '../auth.js';
import { documentWithFunctions } from '../schemas.js';

const NODES_TIMEOUT_MS = 2000;

/** Health, the live OpenAPI document and the scheduler's node table. */
export function systemHandlers(api: OpenAPIBackend, messaging: Messaging, registry: Registry, health: HealthWatch, serveMetrics: Telemetry['serveMetrics']): Handlers {
  return {
    // 503 only when this gateway cannot reach NATS (it can serve nothing); otherwise 200, and
    // `degraded` when part of the platform behind it is missing or says it has a problem.
    getHealth: ({ reply }) => {
      const up = messaging.connected;
      const h = health.current;
      const whole = up && h.jetstream === 'ok' && h.schedulers > 0 && h.workers > 0 && h.problems.length === 0;
      return reply.code(up ? 200 : 503).send({ status: whole ? 'ok' : 'degraded', nats: up ? 'connected' : 'disconnected', ...h, ...(up ? {} : { jetstream: 'unknown' }) });
    },
    // The exporter writes the answer itself, so Fastify lets go of it.
    getMetrics: ({ request, reply }) => {
      reply.hijack();
      serveMetrics(request.raw, reply.raw);
    },
    // Deployed functions are listed only for a caller who may invoke them: there are no public
    // functions and a token may invoke every function, so that is none without a token and all
    // with a valid one. A token that is sent but not valid is refused, as on any other route.
    getOpenApi: ({ request }) => {
      const header = request.headers.authorization;
      const functions = header === undefined ? [] : (authenticate(registry, header), registry.list());
      return documentWithFunctions(api.document as { paths: Record<string, unknown> }, functions);
    },
    listNodes: async () => {
      if (!messaging.connected) throw new SkiffError('SKIFF_NATS_UNAVAILABLE', 'the gateway is not connected to NATS');
      try {
        const msg = await messaging.nc.request(SUBJECTS.nodesList, undefined, { timeout: NODES_TIMEOUT_MS });
        const table = decodeJson(nodeTableSchema, msg.data, 'node table');
        return { nodes: table.nodes.map((n) => ({ ...n, lastSeen: new Date(n.lastSeen).toISOString() })) };
      } catch (err) {
        if (err instanceof SkiffError) throw err;
        const detail = err instanceof RequestError && err.isNoResponders() ? 'no scheduler is running' : 'the scheduler did not answer';
        throw new SkiffError('SKIFF_NO_SCHEDULER', detail, { cause: err });
      }
    },
  };
}
