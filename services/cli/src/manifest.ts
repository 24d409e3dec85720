import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { LIMIT_RANGES } from '@skiff/contracts';

const limit = (r: { min: number; max: number }) => z.number().min(r.min).max(r.max).optional();

/** functions/<name>/function.yaml: how a function is packed and deployed. */
const manifestSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'must be lower-case letters, digits and dashes, starting with a letter'),
    mode: z.enum(['exec']).default('exec'),
    base: z.string().min(1).default('busybox:latest'),
    entrypoint: z.array(z.string()).min(1),
    env: z.record(z.string(), z.string()).optional(),
    timeoutMs: z.number().int().min(1).max(900_000).optional(),
    memoryMb: limit(LIMIT_RANGES.memoryMb),
    cpus: limit(LIMIT_RANGES.cpus),
    maxProcesses: limit(LIMIT_RANGES.maxProcesses),
    tmpMb: limit(LIMIT_RANGES.tmpMb),
  })
  .strict();

export type FunctionManifest = z.infer<typeof manifestSchema> & { dir: string };

/** The deploy body (PUT /v1/functions/{name}) for a manifest whose image is `ref`. */
export function deploySettings(fn: FunctionManifest, ref: string): Record<string, unknown> {
  const { timeoutMs, memoryMb, cpus, maxProcesses, tmpMb } = fn;
  const optional = Object.entries({ timeoutMs, memoryMb, cpus, maxProcesses, tmpMb }).filter(([, v]) => v !== undefined);
  return { image: ref, mode: fn.mode, ...Object.fromEntries(optional) };
}

export function loadManifest(dir: string): FunctionManifest {
  const file = join(dir, 'function.yaml');
  const parsed = manifestSchema.safeParse(parseYaml(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    throw new Error(`${file}: ${first.path.join('.') || '(top)'}: ${first.message}`);
  }
  return { ...parsed.data, dir };
}
