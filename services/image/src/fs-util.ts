import type { Stats } from 'node:fs';
import { lstat } from 'node:fs/promises';

/** lstat that answers null for a path that does not exist (and throws for anything else). */
export async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return null;
    throw err;
  }
}
