import { pino, type Logger } from 'pino';
import { RotatingLogFile, logFileOptions, type LogEnv } from './log-file.js';

export type { Logger };

/** Paths that may hold credentials; pino replaces them before a line is written. */
export const REDACT = [
  'authorization',
  'token',
  'password',
  'pass',
  'secret',
  '*.authorization',
  '*.token',
  '*.password',
  '*.pass',
  '*.secret',
  'req.headers.authorization',
  'headers.authorization',
  'headers.cookie',
];

/**
 * JSON logs, one base logger per service: on stderr (stdout belongs to commands' own output),
 * or, with SKIFF_LOG_FILE, in that file, rotated at SKIFF_LOG_MAX_BYTES (SKIFF_LOG_KEEP files
 * kept) and reopened on SIGHUP.
 */
export function createLogger(service: string, level = process.env.SKIFF_LOG_LEVEL ?? 'info', env: LogEnv = process.env): Logger {
  const options = { name: service, level, redact: { paths: REDACT, censor: '[redacted]' } };
  const file = logFileOptions(env);
  if (!file) return pino(options, pino.destination(2));
  const out = new RotatingLogFile(file);
  process.on('SIGHUP', () => {
    try {
      out.reopen();
    } catch (err) {
      process.stderr.write(`skiff-${service}: cannot reopen ${file.path}, still writing the old file: ${(err as Error).message}\n`);
    }
  });
  return pino(options, out);
}
