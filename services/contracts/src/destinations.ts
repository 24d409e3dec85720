import { z } from 'zod';
import { TRIGGER_EVENT_SUBJECT_PATTERN, triggerSubjectProblem } from './subjects.js';

/**
 * Where the outcome of a function's async invocations is sent (README, Destinations): a NATS
 * subject, an HTTP callback URL, or both. Checked by the gateway at deploy and again by the
 * scheduler on every message that carries them.
 */
export interface Destinations {
  subject?: string | undefined;
  url?: string | undefined;
}

export const MAX_DESTINATION_URL_LENGTH = 2048;

/** Why a destination subject is refused: a trigger subject's rules, and no wildcards (one publishes on it). */
export function destinationSubjectProblem(subject: string): string | undefined {
  const problem = triggerSubjectProblem(subject);
  if (problem) return problem;
  if (!TRIGGER_EVENT_SUBJECT_PATTERN.test(subject)) return 'must be dot-separated tokens of [A-Za-z0-9_-], without wildcards';
  return undefined;
}

/**
 * Why a callback URL is refused: absolute http: or https:, at most 2048 characters, and no user
 * name or password in it (they would be stored and shown with the function's settings).
 */
export function destinationUrlProblem(url: string): string | undefined {
  if (url.length === 0 || url.length > MAX_DESTINATION_URL_LENGTH) return `must be 1-${MAX_DESTINATION_URL_LENGTH} characters`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'must be an absolute http: or https: URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'must be an absolute http: or https: URL';
  if (parsed.username !== '' || parsed.password !== '') return 'must not hold a user name or password';
  return undefined;
}

/** Every problem of a destinations setting, each with its field (`<prefix>.subject`, …); empty when it may be used. */
export function destinationsProblems(d: Destinations, prefix: string): { field: string; message: string }[] {
  const out: { field: string; message: string }[] = [];
  if (d.subject === undefined && d.url === undefined) out.push({ field: prefix, message: 'must have a subject, a url, or both' });
  const subject = d.subject === undefined ? undefined : destinationSubjectProblem(d.subject);
  if (subject) out.push({ field: `${prefix}.subject`, message: subject });
  const url = d.url === undefined ? undefined : destinationUrlProblem(d.url);
  if (url) out.push({ field: `${prefix}.url`, message: url });
  return out;
}

/** The same rules as a zod schema, for messages and function.yaml. */
export const destinationsSchema = z
  .object({ subject: z.string().optional(), url: z.string().optional() })
  .strict()
  .superRefine((d, ctx) => {
    for (const p of destinationsProblems(d, '')) ctx.addIssue({ code: 'custom', path: p.field.split('.').filter(Boolean), message: p.message });
  });
