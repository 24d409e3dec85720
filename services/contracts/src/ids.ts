import { randomBytes } from 'node:crypto';

/** A call id: 16 random bytes, hex. Cheap, unique enough, safe as a header and subject token. */
export function newCallId(): string {
  return randomBytes(16).toString('hex');
}
