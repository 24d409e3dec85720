import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/** functions/<name>/function.yaml: how a function is packed and deployed. */
const manifestSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'must be lower-case letters, digits and dashes, starting with a letter'),
    mode: z.enum(['exec']).default('exec'),
    base: z.string().min(1).default('busybox:latest'),
    entrypoint: z.array(z.string()).min(1),
    env: z.record(z.string(), z.string()).optional(),
    timeoutMs: z.number().int().min(1).max(900_000).optional(),
  })
  .strict();

export type FunctionManifest = z.infer<typeof manifestSchema> & { dir: string };

export function loadManifest(dir: string): FunctionManifest {
  const file = join(dir, 'function.yaml');
  const parsed = manifestSchema.safeParse(parseYaml(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    throw new Error(`${file}: ${first.path.join('.') || '(top)'}: ${first.message}`);
  }
  return { ...parsed.data, dir };
}
