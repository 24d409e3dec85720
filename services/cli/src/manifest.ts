import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { scheduleProblem, type ScheduleSetting } from '@skiff/events';
import { MAX_TIMEOUT_MS, MAX_TRIGGER_SUBJECTS, SETTING_NAMES, destinationsSchema, triggerSubjectProblem, settingSchema, type SettingName } from '@skiff/contracts';

/** Language runtimes Skiff ships: the image a function builds on and how its process starts. */
export const RUNTIMES = {
  node: {
    base: 'node-runtime:latest',
    entrypoint: ['/usr/local/bin/node', '/runtime/runtime.mjs'],
    handlerEnv: 'SKIFF_HANDLER',
    defaultHandler: 'index.mjs',
  },
} as const;

/** functions/<name>/function.yaml: how a function is packed and deployed. */
const manifestSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'must be lower-case letters, digits and dashes, starting with a letter'),
    mode: z.enum(['exec', 'stream']).default('exec'),
    /** A shipped language runtime (stream mode); sets base, entrypoint and the handler. */
    runtime: z.enum(Object.keys(RUNTIMES) as [keyof typeof RUNTIMES]).optional(),
    handler: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9._/-]*$/, 'must be a relative path in the function directory').optional(),
    base: z.string().min(1).optional(),
    entrypoint: z.array(z.string()).min(1).optional(),
    env: z.record(z.string(), z.string()).optional(),
    timeoutMs: z.number().int().min(1).max(MAX_TIMEOUT_MS).optional(),
    inputSchema: z.record(z.string(), z.unknown()).optional(),
    outputSchema: z.record(z.string(), z.unknown()).optional(),
    /** NATS subjects that run the function, by the gateway's rule (it checks them again, and that no other function has them). */
    triggers: z
      .object({
        subjects: z
          .array(z.string().superRefine((s, ctx) => void (triggerSubjectProblem(s) && ctx.addIssue({ code: 'custom', message: `"${s}" ${triggerSubjectProblem(s)}` }))))
          .max(MAX_TRIGGER_SUBJECTS)
          .optional(),
        /** Kept in JetStream and run as async invocations (retries, records, dead letters). */
        durable: z.boolean().optional(),
        /** A cron expression, or { cron, timeZone, catchUp }, by the gateway's rule (README, Schedules). */
        schedule: z
          .union([z.string(), z.object({ cron: z.string(), timeZone: z.string().optional(), catchUp: z.boolean().optional() }).strict()])
          .superRefine((s, ctx) => {
            const problem = scheduleProblem(s as ScheduleSetting);
            if (problem) ctx.addIssue({ code: 'custom', message: problem.message, path: problem.field ? [problem.field.slice(1)] : [] });
          })
          .optional(),
      })
      .strict()
      .optional(),
    /** Where async outcomes go (a NATS subject and/or a callback URL), by the gateway's rule. */
    destinations: destinationsSchema.optional(),
    ...(Object.fromEntries(SETTING_NAMES.map((k) => [k, settingSchema(k).optional()])) as Record<SettingName, z.ZodOptional<z.ZodNumber>>),
  })
  .strict()
  .refine((m) => m.runtime !== undefined || m.entrypoint !== undefined, { message: 'needs an entrypoint (or a runtime)', path: ['entrypoint'] })
  .refine((m) => m.runtime === undefined || m.mode === 'stream', { message: 'a runtime serves stream mode; set mode: stream', path: ['mode'] });

type Parsed = z.infer<typeof manifestSchema>;

export interface FunctionManifest extends Omit<Parsed, 'base' | 'entrypoint'> {
  dir: string;
  base: string;
  entrypoint: string[];
}

/** Reads function.yaml and fills in what its runtime implies. */
export function loadManifest(dir: string): FunctionManifest {
  const file = join(dir, 'function.yaml');
  const parsed = manifestSchema.safeParse(parseYaml(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    throw new Error(`${file}: ${first.path.join('.') || '(top)'}: ${first.message}`);
  }
  const m = parsed.data;
  const runtime = m.runtime ? RUNTIMES[m.runtime] : undefined;
  const env = runtime ? { [runtime.handlerEnv]: `/function/${m.handler ?? runtime.defaultHandler}`, ...m.env } : m.env;
  return {
    ...m,
    dir,
    base: m.base ?? runtime?.base ?? 'busybox:latest',
    entrypoint: m.entrypoint ?? [...runtime!.entrypoint],
    ...(env ? { env } : {}),
  };
}

/** The deploy body (PUT /v1/functions/{name}) for a manifest whose image is `ref`. */
export function deploySettings(fn: FunctionManifest, ref: string): Record<string, unknown> {
  const optional = (['timeoutMs', 'inputSchema', 'outputSchema', 'triggers', 'destinations', ...SETTING_NAMES] as const).map((k) => [k, fn[k]] as const);
  return { image: ref, mode: fn.mode, ...Object.fromEntries(optional.filter(([, v]) => v !== undefined)) };
}
