import { SkiffError } from '@skiff/contracts';
import type { AsyncInvocations } from '../async-invocations.js';
import { invocationFor } from '../invocation.js';
import type { Registry } from '../registry.js';
import { getOrThrow } from './functions.js';
import type { Handlers, OperationContext } from '../openapi.js';

/** `limit` and `cursor` as the API document checked them. */
function page(ctx: OperationContext): { cursor: number; limit: number } {
  const q = ctx.request.query as { limit?: string | number; cursor?: string };
  return { cursor: Number(q.cursor ?? 0), limit: Number(q.limit ?? 100) };
}

const next = (n: number | undefined) => (n === undefined ? {} : { next: String(n) });

/** Reading async invocations and their dead letters; redrive and purge. */
export function invocationHandlers(registry: Registry, invocations: AsyncInvocations): Handlers {
  return {
    getInvocation: async ({ params }) => {
      const record = await invocations.read(params.id!);
      if (!record) throw new SkiffError('SKIFF_INVOCATION_NOT_FOUND', `no async invocation "${params.id}" is queued or recorded`);
      return record;
    },
    listInvocations: async (ctx) => {
      const { cursor, limit } = page(ctx);
      const { records, next: n } = await invocations.list(ctx.params.name!, cursor, limit);
      return { invocations: records, ...next(n) };
    },
    listDeadLetters: async (ctx) => {
      const { cursor, limit } = page(ctx);
      const { letters, next: n } = await invocations.deadLetters(ctx.params.name!, cursor, limit);
      return { deadLetters: letters, ...next(n) };
    },
    redriveDeadLetter: async ({ params, reply }) => {
      const fn = getOrThrow(registry, params.name!);
      const record = await invocations.redrive(invocationFor(fn, params.id!), fn.timeoutMs, params.id!, fn.destinations);
      return reply.code(202).header('location', `/v1/invocations/${record.id}`).send(record);
    },
    deleteDeadLetter: async ({ params, reply }) => {
      await invocations.purge(params.name!, params.id!);
      return reply.code(204).send();
    },
  };
}
