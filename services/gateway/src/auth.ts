import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SkiffError } from '@skiff/contracts';
import type { Registry } from './registry.js';

const ADMIN_KEY_ID = 'admin';

/** Tokens are long random strings, so a plain SHA-256 is enough to keep them unreadable at rest. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * Makes sure an admin key exists. SKIFF_ADMIN_TOKEN wins when set; otherwise a token is
 * generated on the first start only and written once to <data dir>/admin.token (0600).
 * Returns the path written, if any.
 */
export function ensureAdminKey(registry: Registry, dataDir: string, configured: string | undefined): string | undefined {
  if (configured !== undefined) {
    registry.putKey(ADMIN_KEY_ID, hashToken(configured), 'admin');
    return undefined;
  }
  if (registry.hasKey(ADMIN_KEY_ID)) return undefined;
  const token = `skf_${randomBytes(32).toString('base64url')}`;
  const file = join(dataDir, 'admin.token');
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'w' });
  registry.putKey(ADMIN_KEY_ID, hashToken(token), 'admin');
  return file;
}

export interface Principal {
  keyId: string;
  role: string;
}

/** Checks an Authorization header; throws SKIFF_UNAUTHORIZED without saying which part was wrong. */
export function authenticate(registry: Registry, header: string | undefined): Principal {
  const match = header ? /^Bearer ([\x21-\x7e]{1,512})$/i.exec(header) : null;
  if (!match) throw new SkiffError('SKIFF_UNAUTHORIZED', 'send "Authorization: Bearer <token>"');
  const key = registry.findKey(hashToken(match[1]!));
  if (!key) throw new SkiffError('SKIFF_UNAUTHORIZED', 'the token is not valid');
  return { keyId: key.id, role: key.role };
}
