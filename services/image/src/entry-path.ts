import { unsafe } from './errors.js';

/**
 * Splits a tar entry name into path components below the unpack root. "./" and empty
 * components are dropped (so "./a//b/" is ["a","b"] and "./" is the root, []); absolute
 * names, ".." anywhere and NUL bytes are refused rather than cleaned up: a layer that
 * contains them was not made by an honest tool.
 */
export function entryComponents(name: string, what = 'entry'): string[] {
  if (name.includes('\0')) throw unsafe(`${what} ${JSON.stringify(name)} contains a NUL byte`);
  if (name.startsWith('/')) throw unsafe(`${what} ${JSON.stringify(name)} is an absolute path`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw unsafe(`${what} ${JSON.stringify(name)} climbs out with '..'`);
  return parts;
}
