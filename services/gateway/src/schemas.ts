import { Ajv, type ValidateFunction } from 'ajv';
import { SkiffError } from '@skiff/contracts';
import type { FunctionRecord } from './registry.js';
import { addUserFormats } from './formats.js';
import { linearRegExp } from './linear-regexp.js';
import { checkSchemaLimits } from './schema-limits.js';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\b/i;

/** Checks user schemas against the JSON Schema meta-schema; it never holds a user schema itself. */
const metaSchemas = new Ajv({ strict: false });
addUserFormats(metaSchemas);

function unusable(field: string, why: string): SkiffError {
  return new SkiffError('SKIFF_VALIDATION_FAILED', `${field}: ${why}`, { errors: [{ field, message: `is not a usable JSON Schema: ${why}` }] });
}

/**
 * Compiles one user schema on a compiler of its own, so its `$id` and `$ref`s live in a namespace
 * no other function or version shares (the same `$id` deployed twice, or by two functions, is
 * fine; a `$ref` cannot reach another function's schema). The limits are checked first: they are
 * what bounds the compile time. Patterns run on a linear-time engine.
 */
export function compileUserSchema(schema: object, field: string): ValidateFunction {
  checkSchemaLimits(schema, field);
  let valid: boolean;
  try {
    valid = metaSchemas.validateSchema(schema) as boolean;
  } catch (err) {
    throw unusable(field, (err as Error).message);
  }
  if (!valid) throw unusable(field, metaSchemas.errorsText(metaSchemas.errors, { dataVar: field }));
  // The meta-schema check is done above, once, so each compiler skips loading its own.
  const ajv = new Ajv({ allErrors: true, strict: false, meta: false, validateSchema: false, code: { regExp: linearRegExp } });
  addUserFormats(ajv);
  try {
    return ajv.compile(schema);
  } catch (err) {
    throw unusable(field, (err as Error).message);
  }
}

/**
 * Functions' own input schemas: compiled once per function version, checked at the edge so a
 * request that does not fit gets 400 naming the field and never reaches a container. A function
 * with an input schema takes JSON only (415 otherwise), so the check can never be stepped around.
 */
export class InputSchemas {
  /** The current version's validator per function; an older version's is replaced, not kept. */
  private readonly compiled = new Map<string, { version: number; validate: ValidateFunction } | { version: number; refused: SkiffError }>();

  /** Throws when the body is not JSON, or does not match the function's inputSchema. */
  check(fn: FunctionRecord, contentType: string | undefined, body: Uint8Array): void {
    if (!fn.inputSchema) return;
    if (!contentType || !JSON_TYPE.test(contentType)) {
      throw new SkiffError('SKIFF_UNSUPPORTED_MEDIA_TYPE', `function "${fn.name}" has an input schema and takes application/json only, not ${contentType ? `"${contentType}"` : 'a body without a content type'}`);
    }
    let value: unknown;
    try {
      value = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
    } catch (err) {
      throw new SkiffError('SKIFF_VALIDATION_FAILED', `body: ${(err as Error).message}`, { errors: [{ field: 'body', message: 'is not valid JSON' }] });
    }
    const validate = this.validator(fn);
    if (validate(value)) return;
    const errors = (validate.errors ?? []).map((e) => {
      const extra = e.params as { missingProperty?: string; additionalProperty?: string };
      const path = [...e.instancePath.split('/').filter(Boolean), extra.missingProperty ?? extra.additionalProperty].filter(Boolean);
      return { field: ['body', ...path].join('.'), message: e.keyword === 'additionalProperties' ? 'is not a known field' : (e.message ?? 'is invalid') };
    });
    throw new SkiffError('SKIFF_VALIDATION_FAILED', errors.map((e) => `${e.field} ${e.message}`).join('; '), { errors });
  }

  private validator(fn: FunctionRecord): ValidateFunction {
    let cached = this.compiled.get(fn.name);
    if (cached?.version !== fn.version) {
      try {
        cached = { version: fn.version, validate: compileUserSchema(fn.inputSchema!, 'inputSchema') };
      } catch (err) {
        // Only a schema stored before today's limits (or engine) can fail here; remembered, so
        // that each invoke does not pay for the compile again.
        const refused = err instanceof SkiffError ? err : new SkiffError('SKIFF_VALIDATION_FAILED', String(err));
        const detail = `function "${fn.name}" version ${fn.version} has an input schema this gateway refuses; deploy it again with one it accepts: ${refused.message}`;
        cached = { version: fn.version, refused: new SkiffError(refused.code, detail, refused.errors ? { errors: refused.errors } : {}) };
      }
      this.compiled.set(fn.name, cached);
    }
    if ('refused' in cached) throw cached.refused;
    return cached.validate;
  }
}

/** Refuses, at deploy, a schema over a limit or that cannot be compiled, naming the field. */
export function assertUsableSchema(schema: object | undefined, field: string): void {
  if (schema !== undefined) compileUserSchema(schema, field);
}

/**
 * The live API document: the static one plus, for each function that declares schemas and that
 * the caller may invoke, its own invoke operation with its input and output.
 */
export function documentWithFunctions(base: { paths: Record<string, unknown> }, functions: FunctionRecord[]): object {
  const paths: Record<string, unknown> = { ...base.paths };
  for (const fn of functions) {
    if (!fn.inputSchema && !fn.outputSchema) continue;
    paths[`/v1/functions/${fn.name}/invoke`] = {
      post: {
        operationId: `invoke_${fn.name.replaceAll('-', '_')}`,
        tags: ['functions: deployed'],
        summary: `Invoke ${fn.name} (version ${fn.version}, ${fn.mode})`,
        ...(fn.inputSchema ? { requestBody: { required: true, content: { 'application/json': { schema: fn.inputSchema } } } } : {}),
        responses: {
          '200': { description: 'The function output.', content: { 'application/json': { schema: fn.outputSchema ?? {} } } },
          default: { $ref: '#/components/responses/Problem' },
        },
      },
    };
  }
  return { ...base, paths };
}
