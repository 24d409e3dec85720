import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths that may hold credentials; pino replaces them before a line is written. */
const REDACT = [
  'authorization',
  'token',
  '*.authorization',
  '*.token',
  'req.headers.authorization',
  'headers.authorization',
];

/** JSON logs on stderr (stdout belongs to commands' own output), one base logger per service. */
export function createLogger(service: string, level = process.env.SKIFF_LOG_LEVEL ?? 'info'): Logger {
  return pino({ name: service, level, redact: { paths: REDACT, censor: '[redacted]' } }, pino.destination(2));
}
