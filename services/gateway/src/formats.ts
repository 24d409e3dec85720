import type { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { RE2JS } from 're2js';

/**
 * The `format`s a user's JSON Schema may use: those of ajv-formats ("full" mode), with `url`
 * replaced by a linear-time equivalent. Each of the others was measured with hostile inputs and
 * checked with the recheck ReDoS analyser (docs/decisions.md, "Formats in user schemas"): they
 * run in time linear in the string on V8's engine. ajv-formats' `url` (the dperini expression) is
 * quadratic: `'ftp://172.30.3.56' + '4.1.6.7:155'.repeat(n)` took 3.1 s at 40 000 characters, so
 * one 6 MiB invoke body would hold the event loop for hours.
 */

// JavaScript's \s, which RE2's \s (ASCII only) is not.
const SPACE = '\\t\\n\\x{0b}\\f\\r \\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}\\x{feff}';
const NOT_SPACE = `[^${SPACE}]`;
// A dotted-decimal octet as the dperini expression writes it: 0-255, up to three digits.
const OCTET = '(?:\\d{1,2}|1\\d\\d|2[0-4]\\d|25[0-5])';
const LAST_OCTET = '(?:[1-9]\\d?|1\\d\\d|2[0-4]\\d|25[0-4])';
const OTHER_OCTETS = `(?:\\.${OCTET}){2}\\.${LAST_OCTET}`;
/**
 * A public IPv4 host: the dperini expression's negative lookaheads (10/8, 127/8, 169.254/16,
 * 192.168/16, 172.16/12 are not URLs' hosts), which RE2 has not, written out as the first two
 * octets they leave.
 */
const PUBLIC_IPV4 = [
  // 1-223 but 10, 127, 169, 172 and 192
  `(?:[1-9]|1[1-9]|[2-9]\\d|1(?:[01]\\d|2[0-689]|[3-5]\\d|6[0-8]|7[013-9]|8\\d|9[013-9])|2[01]\\d|22[0-3])${OTHER_OCTETS}`,
  `169\\.(?:\\d{1,2}|1\\d\\d|2[0-4]\\d|25[0-35])\\.${OCTET}\\.${LAST_OCTET}`,
  `192\\.(?:\\d{1,2}|1(?:[0-57-9]\\d|6[0-79])|2[0-4]\\d|25[0-5])\\.${OCTET}\\.${LAST_OCTET}`,
  `172\\.(?:\\d|0\\d|1[0-5]|3[2-9]|[4-9]\\d|1\\d\\d|2[0-4]\\d|25[0-5])\\.${OCTET}\\.${LAST_OCTET}`,
].join('|');
const LABEL_CHAR = '[a-z0-9\\x{a1}-\\x{ffff}]';
const HOST_NAME = `(?:(?:${LABEL_CHAR}+-)*${LABEL_CHAR}+)(?:\\.(?:${LABEL_CHAR}+-)*${LABEL_CHAR}+)*(?:\\.(?:[a-z\\x{a1}-\\x{ffff}]{2,}))`;
const URL_PATTERN = `^(?:https?|ftp)://(?:${NOT_SPACE}+(?::${NOT_SPACE}*)?@)?(?:${PUBLIC_IPV4}|${HOST_NAME})(?::\\d{2,5})?(?:/${NOT_SPACE}*)?$`;
const URL = RE2JS.compile(URL_PATTERN, RE2JS.CASE_INSENSITIVE);

/** ajv-formats' `url`, on RE2: the same strings, in linear time. */
export function isUrl(value: string): boolean {
  return URL.test(value);
}

/** ajv-formats' formats ("full" mode) on an Ajv, its `url` replaced by isUrl. */
export function addUserFormats(ajv: Ajv): void {
  addFormats.default(ajv as never);
  ajv.addFormat('url', isUrl);
}
