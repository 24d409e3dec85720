import { SkiffError } from '@skiff/contracts';
import { authenticate, type Principal } from '../auth.js';
import type { Registry } from '../registry.js';
import { distError } from './errors.js';

/** What registry clients are told to send: skopeo/docker answer a Basic challenge with their creds. */
export const CHALLENGE = 'Basic realm="skiff"';

/**
 * The gateway's tokens, as registry clients send them: `Bearer <token>`, or
 * `Basic base64(user:token)` with any user name (`--creds admin:$TOKEN`). Throws UNAUTHORIZED
 * with the challenge header, never saying which part was wrong.
 */
export function authenticateRegistry(registry: Registry, header: string | undefined): Principal {
  let bearer = header;
  const basic = header ? /^Basic ([A-Za-z0-9+/=]{1,1024})$/i.exec(header) : null;
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    bearer = colon === -1 ? undefined : `Bearer ${decoded.slice(colon + 1)}`;
  }
  try {
    return authenticate(registry, bearer);
  } catch (err) {
    if (err instanceof SkiffError && err.code === 'SKIFF_UNAUTHORIZED') {
      throw distError('UNAUTHORIZED', 'authentication required: send a Skiff token as Bearer, or as the password of Basic auth', {
        headers: { 'www-authenticate': CHALLENGE },
      });
    }
    throw err;
  }
}
