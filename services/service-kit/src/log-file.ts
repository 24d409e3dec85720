import { closeSync, existsSync, fstatSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { envInt } from './env.js';

export interface LogFileOptions {
  path: string;
  /** The file is rotated before a write would take it past this size. */
  maxBytes: number;
  /** Rotated files kept: path.1 (the newest) to path.<keep>; older ones are overwritten. */
  keep: number;
}

/**
 * A service's own log file (pino writes to it as to any stream): rotated by size, and reopened
 * on `reopen()` (SIGHUP), so logrotate can move it away too. Writes are synchronous, as the
 * logger's writes to stderr are, so a line is in the file once the call returns.
 */
export class RotatingLogFile {
  private fd = -1;
  private size = 0;

  constructor(readonly options: LogFileOptions) {
    mkdirSync(dirname(options.path), { recursive: true, mode: 0o700 });
    this.open();
  }

  write(chunk: string): boolean {
    const bytes = Buffer.from(chunk, 'utf8');
    if (this.size > 0 && this.size + bytes.length > this.options.maxBytes) this.rotate();
    let written = 0;
    while (written < bytes.length) written += writeSync(this.fd, bytes, written);
    this.size += bytes.length;
    return true;
  }

  /** Closes the file and opens its path again: after logrotate (or anyone) moved it away. */
  reopen(): void {
    const old = this.fd;
    this.open(); // first, so a path that cannot be opened leaves the old file in use
    closeSync(old);
  }

  /** pino calls this on exit; every write is on disk already. */
  flushSync(): void {}

  close(): void {
    closeSync(this.fd);
  }

  private open(): void {
    this.fd = openSync(this.options.path, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
  }

  private rotate(): void {
    const { path, keep } = this.options;
    for (let i = keep - 1; i >= 1; i--) if (existsSync(`${path}.${i}`)) renameSync(`${path}.${i}`, `${path}.${i + 1}`);
    // Moved away meanwhile (logrotate before its SIGHUP): nothing to rename, a new file all the same.
    if (existsSync(path)) renameSync(path, `${path}.1`);
    this.reopen();
  }
}

export type LogEnv = Record<string, string | undefined>;

/** The log file a service writes when SKIFF_LOG_FILE is set; undefined: it logs on stderr. */
export function logFileOptions(env: LogEnv): LogFileOptions | undefined {
  const path = env.SKIFF_LOG_FILE;
  if (!path) return undefined;
  return {
    path,
    maxBytes: envInt(env, 'SKIFF_LOG_MAX_BYTES', 64 * 1024 * 1024, 1024, 2 ** 40),
    keep: envInt(env, 'SKIFF_LOG_KEEP', 5, 1, 1000),
  };
}
