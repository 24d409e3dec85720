import { isDigest } from './digest.js';
import { invalid } from './errors.js';
import { isIndexType, isManifestType } from './media.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest } from './types.js';

/*
 * Structural checks for the JSON documents of an image. They are strict only where a bad
 * value would later be used as a path, a size or a digest; unknown fields pass through.
 */

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return isObj(v) && Object.values(v).every((x) => typeof x === 'string');
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

export function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw invalid(`${what} is not valid JSON`, err);
  }
}

export function checkDescriptor(v: unknown, what: string): Descriptor {
  if (!isObj(v)) throw invalid(`${what}: descriptor is not an object`);
  if (typeof v.mediaType !== 'string') throw invalid(`${what}: descriptor has no mediaType`);
  if (!isDigest(v.digest)) throw invalid(`${what}: descriptor digest ${JSON.stringify(v.digest)} is not sha256:<64 hex>`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) {
    throw invalid(`${what}: descriptor ${v.digest} has a bad size`);
  }
  if (v.annotations !== undefined && !isStringRecord(v.annotations)) {
    throw invalid(`${what}: descriptor ${v.digest} has non-string annotations`);
  }
  return v as unknown as Descriptor;
}

export function checkIndex(v: unknown, what: string): ImageIndex {
  if (!isObj(v) || v.schemaVersion !== 2 || !Array.isArray(v.manifests)) {
    throw invalid(`${what} is not an image index (schemaVersion 2 with manifests)`);
  }
  if (v.mediaType !== undefined && !isIndexType(v.mediaType as string)) {
    throw invalid(`${what} has media type ${String(v.mediaType)}, not an image index`);
  }
  v.manifests.forEach((d, i) => checkDescriptor(d, `${what} manifests[${i}]`));
  return v as unknown as ImageIndex;
}

export function checkManifest(v: unknown, digest: string): ImageManifest {
  const what = `manifest ${digest}`;
  if (!isObj(v) || v.schemaVersion !== 2) throw invalid(`${what} is not schemaVersion 2`);
  if (v.mediaType !== undefined && !isManifestType(v.mediaType as string)) {
    throw invalid(`${what} has media type ${String(v.mediaType)}, not an image manifest`);
  }
  checkDescriptor(v.config, `${what} config`);
  if (!Array.isArray(v.layers)) throw invalid(`${what} has no layers array`);
  v.layers.forEach((d, i) => checkDescriptor(d, `${what} layers[${i}]`));
  return v as unknown as ImageManifest;
}

export function checkConfig(v: unknown, digest: string, layerCount: number): ImageConfig {
  const what = `config ${digest}`;
  if (!isObj(v)) throw invalid(`${what} is not an object`);
  if (typeof v.architecture !== 'string' || typeof v.os !== 'string') {
    throw invalid(`${what} lacks architecture/os`);
  }
  const rootfs = v.rootfs;
  if (!isObj(rootfs) || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) {
    throw invalid(`${what} has no rootfs of type layers`);
  }
  if (!rootfs.diff_ids.every(isDigest)) throw invalid(`${what} has a diff_id that is not a sha256 digest`);
  if (rootfs.diff_ids.length !== layerCount) {
    throw invalid(`${what} lists ${rootfs.diff_ids.length} diff_ids for ${layerCount} layers`);
  }
  const c = v.config;
  if (c !== undefined && c !== null) {
    if (!isObj(c)) throw invalid(`${what}: config is not an object`);
    for (const k of ['Env', 'Entrypoint', 'Cmd'] as const) {
      if (c[k] !== undefined && c[k] !== null && !isStringArray(c[k])) throw invalid(`${what}: ${k} is not a string array`);
    }
    if (c.User !== undefined && c.User !== null) {
      if (typeof c.User !== 'string') throw invalid(`${what}: User is not a string`);
      // uid[:gid] (or names): a numeric id must fit in [0, 2^31), as in tar headers.
      for (const part of c.User.split(':')) {
        if (/^\d+$/.test(part) && !(Number(part) < 2 ** 31)) throw invalid(`${what}: User ${JSON.stringify(c.User)} has an id out of range (0 to 2^31-1)`);
      }
    }
    if (c.Labels !== undefined && c.Labels !== null && !isStringRecord(c.Labels)) {
      throw invalid(`${what}: Labels are not strings`);
    }
  }
  return v as unknown as ImageConfig;
}
