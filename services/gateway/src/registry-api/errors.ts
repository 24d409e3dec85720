/**
 * Errors of the OCI Distribution API. Registry clients (skopeo, docker, crane) understand
 * `{"errors":[{"code","message","detail"}]}` with the codes from the distribution spec, not
 * problem+json, so /v2 answers in that format.
 */
export const DIST_ERRORS = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  /** Not in the spec's table; the reference registry uses it for its own failures. */
  UNKNOWN: 500,
} as const;

export type DistCode = keyof typeof DIST_ERRORS;

export class DistributionError extends Error {
  readonly status: number;
  readonly detail: unknown;
  /** Extra response headers (the auth challenge, the current Range of an upload). */
  readonly headers: Record<string, string>;

  constructor(
    readonly code: DistCode,
    message: string,
    opts: { status?: number; detail?: unknown; cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DistributionError';
    this.status = opts.status ?? DIST_ERRORS[code];
    this.detail = opts.detail;
    this.headers = opts.headers ?? {};
  }

  toJSON(): { errors: Array<{ code: DistCode; message: string; detail?: unknown }> } {
    return { errors: [{ code: this.code, message: this.message, ...(this.detail === undefined ? {} : { detail: this.detail }) }] };
  }
}

export function distError(code: DistCode, message: string, opts?: ConstructorParameters<typeof DistributionError>[2]): DistributionError {
  return new DistributionError(code, message, opts);
}
