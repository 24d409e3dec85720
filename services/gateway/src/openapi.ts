import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { OpenAPIBackend, type Operation, type ValidationResult } from 'openapi-backend';
import addFormats from 'ajv-formats';
import { parse as parseYaml } from 'yaml';
import { SkiffError, type FieldProblem } from '@skiff/contracts';

type ErrorObject = NonNullable<ValidationResult['errors']>[number];

export interface OperationContext {
  request: FastifyRequest;
  reply: FastifyReply;
  params: Record<string, string>;
  body: unknown;
}

/** A handler gets the validated request and returns the response body (or sends it itself). */
export type OperationHandler = (ctx: OperationContext) => unknown;
export type Handlers = Record<string, OperationHandler>;

export const SPEC_FILE = new URL('../../../openapi/gateway.yaml', import.meta.url);

/** Loads openapi/gateway.yaml, the single source of truth for the HTTP API. */
export async function loadApi(file: URL | string = SPEC_FILE): Promise<OpenAPIBackend> {
  const definition = parseYaml(readFileSync(file, 'utf8'));
  const api = new OpenAPIBackend({
    definition,
    validate: true,
    strict: true,
    ajvOpts: { allErrors: true },
    customizeAjv: (ajv) => {
      addFormats.default(ajv as never);
      return ajv;
    },
  });
  await api.init();
  return api;
}

/** An operation needs a token unless it (or the document) declares `security: []`. */
export function needsAuth(api: OpenAPIBackend, op: Operation): boolean {
  const security = op.security ?? api.definition.security ?? [];
  return security.length > 0;
}

/** Operations whose body is not JSON get it as raw bytes (a Buffer). */
export function takesRawBody(op: Operation): boolean {
  const content = op.requestBody && 'content' in op.requestBody ? op.requestBody.content : undefined;
  return content !== undefined && !('application/json' in content);
}

function fieldOf(e: ErrorObject): string {
  const [where = '', ...rest] = e.instancePath.split('/').filter(Boolean);
  const base = [where === 'requestBody' ? 'body' : where, ...rest];
  const extra = (e.params as { missingProperty?: string; additionalProperty?: string });
  if (extra.missingProperty) base.push(extra.missingProperty);
  if (extra.additionalProperty) base.push(extra.additionalProperty);
  return base.filter(Boolean).join('.') || 'body';
}

function messageOf(e: ErrorObject): string {
  if (e.keyword === 'additionalProperties') return 'is not a known field';
  if (e.keyword === 'required') return 'is required';
  if (e.keyword === 'enum') return `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map(String).join(', ')}`;
  return e.message ?? 'is invalid';
}

/** Turns ajv's errors into one 400 that names each offending field. */
export function validationError(errors: ErrorObject[]): SkiffError {
  const seen = new Set<string>();
  const problems: FieldProblem[] = [];
  for (const e of errors) {
    const p = { field: fieldOf(e), message: messageOf(e) };
    const key = `${p.field}\0${p.message}`;
    if (!seen.has(key)) problems.push(p), seen.add(key);
  }
  const detail = problems.map((p) => `${p.field} ${p.message}`).join('; ');
  return new SkiffError('SKIFF_VALIDATION_FAILED', detail, { errors: problems });
}

function fastifyPath(openapiPath: string): string {
  return openapiPath.replace(/\{([^}]+)\}/g, ':$1');
}

type RequestCheck = (request: FastifyRequest) => ErrorObject[];

/**
 * The operation's request validation: openapi-backend's compiled ajv validators, fed with
 * what Fastify has already parsed (path params, query, headers, body). This is the check
 * `api.validateRequest` makes, minus re-parsing the URL, query and cookies on every request,
 * which cost more than the validation itself on the invoke path.
 */
function requestCheck(api: OpenAPIBackend, op: Operation): RequestCheck {
  const validators = api.validator.getRequestValidatorsForOperation(op.operationId!) ?? [];
  const params = (op.parameters ?? []).filter((p): p is Exclude<typeof p, { $ref: string }> => !('$ref' in p));
  if (params.some((p) => p.in === 'cookie')) throw new Error(`operation ${op.operationId}: cookie parameters are not supported`);
  const arrayQuery = params.filter((p) => p.in === 'query' && p.schema && 'type' in p.schema && p.schema.type === 'array').map((p) => p.name);
  return (request) => {
    const query = { ...(request.query as Record<string, unknown>) };
    for (const name of arrayQuery) if (typeof query[name] === 'string') query[name] = [query[name]];
    const parameters: Record<string, unknown> = { path: { ...(request.params as object) }, query, header: request.headers, cookie: {} };
    const mediaType = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if ((typeof request.body === 'object' && request.body !== null) || mediaType === 'application/json') parameters.requestBody = request.body;
    const errors: ErrorObject[] = [];
    for (const validate of validators) {
      validate(parameters);
      if (validate.errors) errors.push(...(validate.errors as ErrorObject[]));
    }
    return errors;
  };
}

/**
 * Registers one Fastify route per operation in the document, dispatching by operationId.
 * Validation is openapi-backend's (ajv compiled from the document); a missing handler is a
 * start-up error, so the document and the code cannot drift apart silently.
 */
export function registerOperations(
  app: FastifyInstance,
  api: OpenAPIBackend,
  handlers: Handlers,
  authenticate: (request: FastifyRequest) => void,
): void {
  const ops = api.getOperations();
  for (const op of ops) {
    if (!handlers[op.operationId!]) throw new Error(`no handler for operation ${op.operationId}`);
  }
  const register = (scope: FastifyInstance, op: Operation) => {
    const handler = handlers[op.operationId!]!;
    const auth = needsAuth(api, op);
    const bodyRequired = Boolean(op.requestBody && 'required' in op.requestBody && op.requestBody.required);
    const check = requestCheck(api, op);
    scope.route({
      method: op.method.toUpperCase() as 'GET',
      url: fastifyPath(op.path),
      // The token is checked as the headers arrive, so a request without one is refused before
      // its body is read (and its connection closed rather than drained).
      ...(auth ? { onRequest: async (request: FastifyRequest) => authenticate(request) } : {}),
      handler: async (request, reply) => {
        const params = request.params as Record<string, string>;
        const errors = check(request);
        if (errors.length) throw validationError(errors);
        if (bodyRequired && (request.body === undefined || request.body === null)) {
          throw new SkiffError('SKIFF_VALIDATION_FAILED', 'body is required', { errors: [{ field: 'body', message: 'is required' }] });
        }
        return handler({ request, reply, params, body: request.body });
      },
    });
  };
  const json = ops.filter((op) => !takesRawBody(op));
  const raw = ops.filter(takesRawBody);
  for (const op of json) register(app, op);
  void app.register(async (scope) => {
    // Bodies reach these handlers untouched, whatever their content type.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    for (const op of raw) register(scope, op);
  });
}
