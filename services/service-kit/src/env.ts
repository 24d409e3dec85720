/** A service's environment, as its config reads it. */
export type Env = Record<string, string | undefined>;

/**
 * An integer setting: `fallback` when unset or empty, otherwise an integer from `min` to `max`,
 * or an error naming the variable (`why` says where a bound comes from).
 */
export function envInt(env: Env, name: string, fallback: number, min: number, max: number, why = ''): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer from ${min} to ${max}${why}, got "${raw}"`);
  return n;
}
