import { SkiffError } from '@skiff/contracts';

// name[:tag]; names are lowercase path components, tags follow the distribution spec.
const REF_RE = /^[a-z0-9]+(?:[._-][a-z0-9]+|__[a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+|__[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$/;

/** "name" means "name:latest". The tag is whatever follows the last ':' after the last '/'. */
export function normalizeRef(ref: string): string {
  const slash = ref.lastIndexOf('/');
  return ref.indexOf(':', slash + 1) === -1 ? `${ref}:latest` : ref;
}

export function isValidRef(ref: string): boolean {
  return ref.length <= 255 && REF_RE.test(ref);
}

/** Normalises and checks a ref we are about to store. */
export function checkedRef(ref: string): string {
  const n = normalizeRef(ref);
  if (!isValidRef(n)) {
    throw new SkiffError('SKIFF_VALIDATION_FAILED', `image ref ${JSON.stringify(ref)} is not name[:tag]`, {
      errors: [{ field: 'ref', message: 'must be name[:tag] with a lowercase name' }],
    });
  }
  return n;
}
