/*
 * /v2 paths carry repository names with slashes (`library/busybox`), so the plugin routes
 * one wildcard and this module splits the rest. Names follow the store's ref rules (the
 * distribution spec's, minus repeated dashes), so every pushed `name:tag` can be stored.
 */

const COMPONENT = '[a-z0-9]+(?:[._-][a-z0-9]+|__[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** Refs in the store are at most 255 characters, `name:tag` included. */
const MAX_REF = 255;

export function isValidName(name: string): boolean {
  return name.length <= MAX_REF - 2 && NAME_RE.test(name);
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export function refOf(name: string, tag: string): string {
  return `${name}:${tag}`;
}

export function fitsRef(name: string, tag: string): boolean {
  return refOf(name, tag).length <= MAX_REF;
}

export type V2Route =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; id: string }
  | { kind: 'unknown' };

const ROUTES: Array<[RegExp, (m: RegExpExecArray) => V2Route]> = [
  [/^(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1]! })],
  [/^(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1]!, id: m[2]! })],
  [/^(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1]!, digest: m[2]! })],
  [/^(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1]!, reference: m[2]! })],
  [/^(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1]! })],
];

/** `rest` is the path after `/v2/`, without the query string, still percent-encoded. */
export function parseV2Path(rest: string): V2Route {
  let path: string;
  try {
    path = decodeURIComponent(rest);
  } catch {
    return { kind: 'unknown' };
  }
  if (path === '') return { kind: 'base' };
  if (path === '_catalog') return { kind: 'catalog' };
  for (const [re, make] of ROUTES) {
    const m = re.exec(path);
    if (m) return make(m);
  }
  return { kind: 'unknown' };
}
