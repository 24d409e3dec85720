import { randomUUID } from 'node:crypto';

/**
 * A call id: 122 random bits as 32 hex digits. randomUUID draws from a pooled entropy buffer,
 * so this is much cheaper per request than randomBytes; safe as a header and subject token.
 */
export function newCallId(): string {
  return randomUUID().replaceAll('-', '');
}
