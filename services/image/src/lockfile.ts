import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { link, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { SkiffError } from '@skiff/contracts';

/** A holder keeps the lock for milliseconds; one older than this died holding it. */
const STALE_MS = 10_000;
const WAIT_MS = 30_000;

function errno(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errno(err) === 'EPERM';
  }
}

/** Stale: older than STALE_MS, or written on this host by a process that is gone. */
async function isStale(path: string): Promise<{ stale: boolean; ino: number } | undefined> {
  try {
    const st = await stat(path);
    const [host, pid] = (await readFile(path, 'utf8')).split(' ');
    const dead = host === hostname() && pid !== undefined && !alive(Number(pid));
    return { stale: dead || Date.now() - st.mtimeMs > STALE_MS, ino: st.ino };
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Breaks a stale lock without ever removing a fresh one: the lock is first renamed aside
 * (atomic, so only one breaker gets it), then the renamed file is checked to be the same
 * inode that was judged stale; if a new holder slipped in, its lock is put back.
 */
async function breakStale(path: string, ino: number): Promise<void> {
  const aside = `${path}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if (errno(err) === 'ENOENT') return;
    throw err;
  }
  if ((await stat(aside)).ino !== ino) await link(aside, path).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

/**
 * Runs `fn` holding an exclusive lock file created with O_EXCL, so separate processes (a
 * gateway and a CLI on one store) serialise too. Only the holder's own token is removed.
 */
export async function withLockFile<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const token = `${hostname()} ${process.pid} ${randomBytes(8).toString('hex')}`;
  const deadline = Date.now() + WAIT_MS;
  for (let delay = 2; ; delay = Math.min(delay * 2, 100)) {
    try {
      const fh = await open(path, 'wx', 0o644);
      await fh.writeFile(token);
      await fh.close();
      break;
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
    }
    const s = await isStale(path);
    if (s?.stale) {
      await breakStale(path, s.ino);
      continue;
    }
    if (Date.now() > deadline) throw new SkiffError('SKIFF_INTERNAL', `timed out waiting for lock ${path}`);
    await new Promise((r) => setTimeout(r, delay + Math.random() * delay));
  }
  try {
    return await fn();
  } finally {
    const held = await readFile(path, 'utf8').catch(() => '');
    if (held === token) await unlink(path).catch(() => undefined);
  }
}
