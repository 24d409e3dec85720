/**
 * Stable error codes. Every failure a user or another service can see has one code here;
 * docs/errors.md documents each (a test checks that none is missing).
 */
export const ERROR_CATALOG = {
  SKIFF_UNAUTHORIZED: { status: 401, title: 'Missing or invalid credentials', retryable: false },
  SKIFF_FORBIDDEN: { status: 403, title: 'Not allowed', retryable: false },
  SKIFF_VALIDATION_FAILED: { status: 400, title: 'The request does not match the API', retryable: false },
  SKIFF_SCHEMA_TOO_COMPLEX: { status: 400, title: 'The JSON Schema is over a limit', retryable: false },
  SKIFF_ROUTE_NOT_FOUND: { status: 404, title: 'No such route', retryable: false },
  SKIFF_REQUEST_TIMEOUT: { status: 408, title: 'The request did not arrive in time', retryable: false },
  SKIFF_HEADERS_TOO_LARGE: { status: 431, title: 'Request headers too large', retryable: false },
  SKIFF_BODY_TOO_LARGE: { status: 413, title: 'Request body too large', retryable: false },
  SKIFF_UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported content type', retryable: false },
  SKIFF_FN_NOT_FOUND: { status: 404, title: 'Function not found', retryable: false },
  SKIFF_FN_EXISTS: { status: 409, title: 'Function already exists', retryable: false },
  SKIFF_TRIGGER_TAKEN: { status: 409, title: 'The trigger subject belongs to another function', retryable: false },
  SKIFF_EVENTS_PENDING: { status: 409, title: 'Events still wait in the durable trigger', retryable: true },
  SKIFF_INVOCATION_NOT_FOUND: { status: 404, title: 'Invocation not found', retryable: false },
  SKIFF_DEAD_LETTER_NOT_FOUND: { status: 404, title: 'Dead letter not found', retryable: false },
  SKIFF_FN_DELETED: { status: 410, title: 'The function was deleted before the invocation ran', retryable: false },
  SKIFF_EVENT_TOO_OLD: { status: 410, title: 'The async invocation outlived its maximum age', retryable: false },
  SKIFF_TICK_MISSED: { status: 410, title: 'A scheduled tick was due while no scheduler ran', retryable: false },
  SKIFF_IMAGE_NOT_FOUND: { status: 422, title: 'Image not found in the store', retryable: false },
  SKIFF_IMAGE_INVALID: { status: 502, title: 'Image is invalid or corrupt', retryable: false },
  SKIFF_LAYER_UNSAFE: { status: 502, title: 'Image layer rejected as unsafe', retryable: false },
  SKIFF_NATS_UNAVAILABLE: { status: 503, title: 'Messaging is unavailable', retryable: true },
  SKIFF_NO_SCHEDULER: { status: 503, title: 'No scheduler is running', retryable: true },
  SKIFF_QUEUE_UNAVAILABLE: { status: 503, title: 'The async queue cannot take the invocation', retryable: true },
  SKIFF_QUEUE_FULL: { status: 503, title: 'The async queue is full', retryable: true },
  SKIFF_NO_WORKER: { status: 503, title: 'No worker node is available', retryable: true },
  SKIFF_WORKER_LOST: { status: 503, title: 'The worker node of the invocation was lost', retryable: true },
  SKIFF_OVERLOADED: { status: 429, title: 'Too many invocations waiting; try again shortly', retryable: true },
  SKIFF_NO_CAPACITY: { status: 503, title: 'No room to run the function before its deadline', retryable: true },
  SKIFF_DEADLINE_EXCEEDED: { status: 504, title: 'The invocation ran past its deadline', retryable: true },
  SKIFF_FN_FAILED: { status: 502, title: 'The function failed', retryable: false },
  SKIFF_FN_OUTPUT_TOO_LARGE: { status: 502, title: 'The function output is too large', retryable: false },
  SKIFF_OUT_OF_MEMORY: { status: 502, title: 'The function ran out of memory', retryable: false },
  SKIFF_TOO_MANY_PROCESSES: { status: 502, title: 'The function hit its process limit', retryable: false },
  SKIFF_CONTAINER_FAILED: { status: 500, title: 'The container could not be started', retryable: true },
  SKIFF_BAD_MESSAGE: { status: 500, title: 'A message did not match its schema', retryable: false },
  SKIFF_INTERNAL: { status: 500, title: 'Internal error', retryable: true },
} as const satisfies Record<string, { status: number; title: string; retryable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CATALOG, value);
}

/** A field-level problem, named by its JSON pointer-ish path (e.g. "body.mode"). */
export interface FieldProblem {
  field: string;
  message: string;
}

/**
 * The one error type that crosses module and service boundaries. The code decides the HTTP
 * status and whether a retry may help; `detail` is the human explanation for this occurrence.
 */
export class SkiffError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly errors: FieldProblem[] | undefined;

  constructor(code: ErrorCode, detail: string, options: { cause?: unknown; errors?: FieldProblem[] } = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SkiffError';
    this.code = code;
    this.status = ERROR_CATALOG[code].status;
    this.retryable = ERROR_CATALOG[code].retryable;
    this.errors = options.errors;
  }

  /** Serialisable form used on NATS replies and, through the gateway, as problem details. */
  toJSON(): ErrorBody {
    return { code: this.code, detail: this.message, ...(this.errors ? { errors: this.errors } : {}) };
  }
}

export interface ErrorBody {
  code: ErrorCode;
  detail: string;
  errors?: FieldProblem[];
}

/** RFC 9457 problem details as Skiff serves them. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail: string;
  instance?: string;
  errors?: FieldProblem[];
}

export function toProblem(err: SkiffError, instance?: string): ProblemDetails {
  return {
    type: `https://skiff.dev/errors/${err.code}`,
    title: ERROR_CATALOG[err.code].title,
    status: err.status,
    code: err.code,
    detail: err.message,
    ...(instance ? { instance } : {}),
    ...(err.errors ? { errors: err.errors } : {}),
  };
}
