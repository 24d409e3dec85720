import { DEFAULT_LIMITS, SkiffError, type FunctionMode, type Limits } from '@skiff/contracts';
import type { ImageStore } from '@skiff/image';
import type { Handlers, OperationContext } from '../openapi.js';
import type { FunctionRecord, FunctionSettings, Registry } from '../registry.js';

interface SettingsBody extends Partial<Limits> {
  image: string;
  mode?: FunctionMode;
  timeoutMs?: number;
}

export function getOrThrow(registry: Registry, name: string): FunctionRecord {
  const fn = registry.get(name);
  if (!fn) throw new SkiffError('SKIFF_FN_NOT_FOUND', `function "${name}" does not exist`);
  return fn;
}

/** Management of the function registry: create, deploy versions, read, delete. */
export function functionHandlers(registry: Registry, store: ImageStore, defaultTimeoutMs: number): Handlers {
  // The ref is resolved once, at deploy time, so a version always runs the same image bytes.
  const settings = async (body: SettingsBody): Promise<FunctionSettings> => {
    const image = await store.resolve(body.image);
    return {
      image: body.image,
      imageDigest: image.digest,
      mode: body.mode ?? 'exec',
      timeoutMs: body.timeoutMs ?? defaultTimeoutMs,
      memoryMb: body.memoryMb ?? DEFAULT_LIMITS.memoryMb,
      cpus: body.cpus ?? DEFAULT_LIMITS.cpus,
      maxProcesses: body.maxProcesses ?? DEFAULT_LIMITS.maxProcesses,
      tmpMb: body.tmpMb ?? DEFAULT_LIMITS.tmpMb,
    };
  };
  return {
    listFunctions: () => ({ functions: registry.list() }),
    getFunction: ({ params }) => getOrThrow(registry, params.name!),
    createFunction: async ({ body, reply }: OperationContext) => {
      const b = body as SettingsBody & { name: string };
      const record = registry.create(b.name, await settings(b));
      return reply.code(201).send(record);
    },
    deployFunction: async ({ params, body, reply }: OperationContext) => {
      const { record, created } = registry.deploy(params.name!, await settings(body as SettingsBody));
      return reply.code(created ? 201 : 200).send(record);
    },
    deleteFunction: ({ params, reply }) => {
      if (!registry.remove(params.name!)) throw new SkiffError('SKIFF_FN_NOT_FOUND', `function "${params.name}" does not exist`);
      return reply.code(204).send();
    },
  };
}
