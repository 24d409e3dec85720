// tmp: writes event.bytes (default 1024, at most 8 MiB) to a file in /tmp, reads it back and
// returns its size. Each invocation uses its own file and removes it, since warm instances
// serve many invocations (some at once) and keep /tmp between them.
import { randomBytes } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MAX_BYTES = 8 * 1024 * 1024;

export default async function tmp(event, context) {
  const bytes = event?.bytes ?? 1024;
  if (!Number.isInteger(bytes) || bytes < 0 || bytes > MAX_BYTES) throw new RangeError(`"bytes" must be an integer from 0 to ${MAX_BYTES}`);
  const path = join(tmpdir(), `skiff-${context.invocationId}-${randomBytes(4).toString('hex')}`);
  const data = randomBytes(bytes);
  try {
    await writeFile(path, data);
    const { size } = await stat(path);
    const back = await readFile(path);
    return { path, bytes: size, intact: back.equals(data) };
  } finally {
    await rm(path, { force: true });
  }
}
