import { SETTING_NAMES, type Invocation, type RunSettings } from '@skiff/contracts';
import type { FunctionRecord } from './registry.js';

const pick = (fn: RunSettings): RunSettings => Object.fromEntries(SETTING_NAMES.map((k) => [k, fn[k]])) as RunSettings;

/** What every hop needs to know to run the function's current version, with a deadline from now. */
export function invocationFor(fn: FunctionRecord, callId: string, now = Date.now()): Invocation {
  return {
    callId,
    deadline: now + fn.timeoutMs,
    fn: fn.name,
    fnVersion: fn.version,
    image: fn.imageDigest,
    mode: fn.mode,
    settings: pick(fn),
  };
}
