import { z } from 'zod';

/**
 * A function version's run settings: resource limits of one instance and the shape of its pool.
 * One table drives the API document's ranges (a test checks them), the registry's columns and
 * the invocation header, so a setting is added in one place.
 */
export const SETTINGS = {
  memoryMb: { min: 16, max: 65_536, default: 128, integer: true },
  cpus: { min: 0.01, max: 64, default: 1, integer: false },
  maxProcesses: { min: 1, max: 4096, default: 64, integer: true },
  tmpMb: { min: 1, max: 65_536, default: 64, integer: true },
  concurrency: { min: 1, max: 1000, default: 1, integer: true },
  minInstances: { min: 0, max: 100, default: 0, integer: true },
  maxInstances: { min: 1, max: 1000, default: 10, integer: true },
  idleTimeoutMs: { min: 1000, max: 86_400_000, default: 300_000, integer: true },
  asyncAttempts: { min: 1, max: 100, default: 3, integer: true },
  asyncBackoffMs: { min: 10, max: 3_600_000, default: 1000, integer: true },
  asyncBackoffCapMs: { min: 10, max: 86_400_000, default: 300_000, integer: true },
  asyncMaxAgeMs: { min: 1000, max: 604_800_000, default: 21_600_000, integer: true },
} as const satisfies Record<string, { min: number; max: number; default: number; integer: boolean }>;

/** The longest deadline a function may have (`timeoutMs`), from the moment the gateway receives a call. */
export const MAX_TIMEOUT_MS = 900_000;

export type SettingName = keyof typeof SETTINGS;
export type RunSettings = Record<SettingName, number>;
export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

export const DEFAULT_SETTINGS: RunSettings = Object.fromEntries(SETTING_NAMES.map((k) => [k, SETTINGS[k].default])) as RunSettings;

/** A zod number schema for one setting, with its range. */
export function settingSchema(name: SettingName): z.ZodNumber {
  const s = SETTINGS[name];
  const n = z.number().min(s.min).max(s.max);
  return s.integer ? n.int() : n;
}

const settingsObject = z.object(Object.fromEntries(SETTING_NAMES.map((k) => [k, settingSchema(k)])) as Record<SettingName, z.ZodNumber>).strict();

/** `memoryMb=128;cpus=1;…`: compact, for one NATS header. */
export function encodeSettings(s: RunSettings): string {
  return SETTING_NAMES.map((k) => `${k}=${s[k]}`).join(';');
}

/** Parsed headers by text: a function version sends the same one with every invocation. */
const parsedSettings = new Map<string, Readonly<RunSettings>>();
const PARSED_SETTINGS_KEPT = 1024;

export const settingsHeader = z.string().transform((text, ctx) => {
  const known = parsedSettings.get(text);
  if (known) return known;
  const entries = text.split(';').map((pair) => pair.split('='));
  if (entries.some((e) => e.length !== 2 || !/^-?[0-9]+(\.[0-9]+)?$/.test(e[1]!))) {
    ctx.addIssue({ code: 'custom', message: 'must be name=number pairs separated by ";"' });
    return z.NEVER;
  }
  const parsed = settingsObject.safeParse(Object.fromEntries(entries.map(([k, v]) => [k, Number(v)])));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', message: `${issue.path.join('.') || 'settings'}: ${issue.message}` });
    return z.NEVER;
  }
  if (parsedSettings.size >= PARSED_SETTINGS_KEPT) parsedSettings.clear();
  const settings = Object.freeze(parsed.data as RunSettings);
  parsedSettings.set(text, settings);
  return settings;
});
