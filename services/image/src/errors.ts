import { SkiffError } from '@skiff/contracts/errors';

export function notFound(detail: string, cause?: unknown): SkiffError {
  return new SkiffError('SKIFF_IMAGE_NOT_FOUND', detail, { cause });
}

export function invalid(detail: string, cause?: unknown): SkiffError {
  return new SkiffError('SKIFF_IMAGE_INVALID', detail, { cause });
}

export function unsafe(detail: string): SkiffError {
  return new SkiffError('SKIFF_LAYER_UNSAFE', detail);
}

/**
 * Turns whatever escaped an unpack into a SkiffError. Host filesystem failures carry a
 * `syscall` (ENOSPC, EACCES, ...) and are ours; anything else came from zlib or the tar
 * parser reading bytes someone else wrote, so the image is at fault.
 */
export function toSkiffError(err: unknown, context: string): SkiffError {
  if (err instanceof SkiffError) return err;
  const e = err as { message?: string; syscall?: string } | undefined;
  const msg = e?.message ?? String(err);
  if (e && typeof e.syscall === 'string') {
    return new SkiffError('SKIFF_INTERNAL', `${context}: ${msg}`, { cause: err });
  }
  return invalid(`${context}: ${msg}`, err);
}
