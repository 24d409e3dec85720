import { DEFAULT_SETTINGS, PROTOCOL_VERSION, SETTING_NAMES, SUBJECTS, SkiffError, destinationsProblems, encodeJson, triggerSubjectProblem, fnChangedSchema, type Destinations, type FunctionMode, type RunSettings } from '@skiff/contracts';
import { scheduleProblem } from '@skiff/events';
import type { AsyncInvocations } from '../async-invocations.js';
import type { Messaging } from '../messaging.js';
import type { Prewarmer } from '../prewarm.js';
import { assertUsableSchema } from '../schemas.js';
import type { ImageStore } from '@skiff/image';
import type { Handlers, OperationContext } from '../openapi.js';
import type { FunctionRecord, FunctionSettings, FunctionTriggers, Registry } from '../registry.js';
import type { TriggerSync } from '../triggers.js';
import type { DurableTriggerStreams } from '../durable-triggers.js';

interface SettingsBody extends Partial<RunSettings> {
  image: string;
  mode?: FunctionMode;
  timeoutMs?: number;
  inputSchema?: object;
  outputSchema?: object;
  triggers?: FunctionTriggers;
  destinations?: Destinations;
}

/** The API document checks the shape; the subjects the platform owns, and schedules croner refuses, are refused here. */
function checkTriggers(triggers: FunctionTriggers | undefined): void {
  const schedule = triggers?.schedule;
  const problem = schedule === undefined ? undefined : scheduleProblem(schedule);
  if (problem) {
    const field = `body.triggers.schedule${problem.field}`;
    throw new SkiffError('SKIFF_VALIDATION_FAILED', `${field}: ${problem.message}`, { errors: [{ field, message: problem.message }] });
  }
  (triggers?.subjects ?? []).forEach((subject, i) => {
    const problem = triggerSubjectProblem(subject);
    if (problem) {
      const field = `body.triggers.subjects.${i}`;
      throw new SkiffError('SKIFF_VALIDATION_FAILED', `${field}: "${subject}" ${problem}`, { errors: [{ field, message: problem }] });
    }
  });
}

/** The API document checks the shape and lengths; the subject's and the URL's rules are checked here. */
function checkDestinations(destinations: Destinations | undefined): void {
  if (destinations === undefined) return;
  const problems = destinationsProblems(destinations, 'body.destinations');
  if (problems.length > 0) {
    const first = problems[0]!;
    throw new SkiffError('SKIFF_VALIDATION_FAILED', `${first.field}: ${first.message}`, { errors: problems });
  }
}

export function getOrThrow(registry: Registry, name: string): FunctionRecord {
  const fn = registry.get(name);
  if (!fn) throw new SkiffError('SKIFF_FN_NOT_FOUND', `function "${name}" does not exist`);
  return fn;
}

/** Management of the function registry: create, deploy versions, read, delete. */
export function functionHandlers(registry: Registry, store: ImageStore, messaging: Messaging, prewarmer: Prewarmer, invocations: AsyncInvocations, triggers: TriggerSync, durable: DurableTriggerStreams, defaultTimeoutMs: number): Handlers {
  // Workers drain instances of versions that are no longer current, and keep the cgroups of a
  // function deleted and created again. Best effort: a worker that misses it drains them anyway
  // when the next invocation brings the new version.
  const changed = (fn: string, fnVersion: number | null) => {
    if (messaging.connected) messaging.nc.publish(SUBJECTS.fnChanged, encodeJson(fnChangedSchema, { type: 'fn-changed', version: PROTOCOL_VERSION, fn, fnVersion }));
  };
  // The ref is resolved once, at deploy time, so a version always runs the same image bytes.
  const settings = async (body: SettingsBody): Promise<FunctionSettings> => {
    assertUsableSchema(body.inputSchema, 'body.inputSchema');
    assertUsableSchema(body.outputSchema, 'body.outputSchema');
    checkTriggers(body.triggers);
    checkDestinations(body.destinations);
    const image = await store.resolve(body.image);
    return {
      image: body.image,
      imageDigest: image.digest,
      mode: body.mode ?? 'exec',
      timeoutMs: body.timeoutMs ?? defaultTimeoutMs,
      ...(Object.fromEntries(SETTING_NAMES.map((k) => [k, body[k] ?? DEFAULT_SETTINGS[k]])) as RunSettings),
      inputSchema: body.inputSchema,
      outputSchema: body.outputSchema,
      triggers: body.triggers,
      destinations: body.destinations,
    };
  };
  // A durable trigger's stream exists before the version that names it is stored.
  const prepared = async (name: string, s: FunctionSettings): Promise<FunctionSettings> => {
    registry.assertSubjectsFree(name, s.triggers?.subjects ?? []);
    await durable.deploying(name, registry.get(name)?.triggers, s.triggers);
    return s;
  };
  return {
    listFunctions: () => ({ functions: registry.list() }),
    getFunction: ({ params }) => getOrThrow(registry, params.name!),
    createFunction: async ({ body, reply }: OperationContext) => {
      const b = body as SettingsBody & { name: string };
      const record = registry.create(b.name, await prepared(b.name, await settings(b)));
      changed(record.name, record.version);
      prewarmer.warm(record);
      triggers.deployed(record);
      return reply.code(201).send(record);
    },
    deployFunction: async ({ params, body, reply }: OperationContext) => {
      const before = registry.get(params.name!)?.version;
      const { record, created } = registry.deploy(params.name!, await prepared(params.name!, await settings(body as SettingsBody)));
      if (before !== record.version) {
        changed(record.name, record.version);
        prewarmer.warm(record);
        triggers.deployed(record);
      }
      return reply.code(created ? 201 : 200).send(record);
    },
    deleteFunction: async ({ params, reply }) => {
      if (!registry.remove(params.name!)) throw new SkiffError('SKIFF_FN_NOT_FOUND', `function "${params.name}" does not exist`);
      changed(params.name!, null);
      triggers.deleted(params.name!);
      // One left behind (JetStream down) goes when the gateway next writes all trigger entries.
      await durable.remove(params.name!).catch((err: unknown) => reply.log.warn({ err, fn: params.name }, "cannot remove the deleted function's durable trigger stream"));
      await invocations.functionDeleted(params.name!).catch((err: unknown) => reply.log.warn({ err, fn: params.name }, 'cannot fail the queued async invocations of the deleted function'));
      return reply.code(204).send();
    },
  };
}
