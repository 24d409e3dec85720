import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { SkiffError } from '@skiff/contracts';
import type { FunctionRecord } from './registry.js';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\b/i;

/**
 * Functions' own input schemas: compiled once per function version, checked at the edge so a
 * request that does not fit gets 400 naming the field and never reaches a container.
 */
export class InputSchemas {
  private readonly ajv = new Ajv({ allErrors: true, strict: false });
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor() {
    addFormats.default(this.ajv as never);
  }

  /** Throws SKIFF_VALIDATION_FAILED when a JSON body does not match the function's inputSchema. */
  check(fn: FunctionRecord, contentType: string | undefined, body: Uint8Array): void {
    if (!fn.inputSchema || !contentType || !JSON_TYPE.test(contentType)) return;
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

  /** Refuses a schema that cannot be compiled, at deploy time, naming the field. */
  assertCompiles(schema: object | undefined, field: string): void {
    if (schema === undefined) return;
    try {
      this.ajv.compile(schema);
    } catch (err) {
      throw new SkiffError('SKIFF_VALIDATION_FAILED', `${field}: ${(err as Error).message}`, { errors: [{ field, message: `is not a usable JSON Schema: ${(err as Error).message}` }] });
    }
  }

  private validator(fn: FunctionRecord): ValidateFunction {
    const key = `${fn.name}@${fn.version}`;
    let v = this.compiled.get(key);
    if (!v) {
      v = this.ajv.compile(fn.inputSchema!);
      this.compiled.set(key, v);
    }
    return v;
  }
}

/**
 * The live API document: the static one plus, for each function that declares schemas, its
 * own invoke operation with its input and output.
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
