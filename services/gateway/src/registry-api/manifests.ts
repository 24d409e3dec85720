import { MEDIA, type Descriptor } from '@skiff/image';
import { isSha256Digest } from './blob-writer.js';

/** The manifest kinds the store can hold and the worker can run (directly or via an index). */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [MEDIA.ociManifest, MEDIA.dockerManifest, MEDIA.ociIndex, MEDIA.dockerManifestList];

/** The distribution spec asks registries to accept manifests of at least 4 MiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface ParsedManifest {
  mediaType: string;
  kind: 'manifest' | 'index';
  /** Blobs that must already be in the store: config and layers, or the index's manifests. */
  references: Descriptor[];
}

export class ManifestProblem extends Error {}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function descriptor(v: unknown, what: string): Descriptor {
  if (!isObj(v)) throw new ManifestProblem(`${what} is not a descriptor object`);
  if (typeof v.mediaType !== 'string' || v.mediaType.length === 0) throw new ManifestProblem(`${what} has no mediaType`);
  if (!isSha256Digest(v.digest)) throw new ManifestProblem(`${what} digest ${JSON.stringify(v.digest)} is not sha256:<64 lowercase hex>`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) throw new ManifestProblem(`${what} (${v.digest}) has a bad size`);
  return v as unknown as Descriptor;
}

/** Content-Type without parameters, lowercased; undefined when absent. */
export function bareMediaType(header: string | undefined): string | undefined {
  const t = header?.split(';')[0]?.trim().toLowerCase();
  return t ? t : undefined;
}

/**
 * Parses a manifest or index as pushed. The media type comes from the document's own
 * `mediaType`, else from Content-Type, else from its shape; the two must agree when both
 * name a manifest type. Throws ManifestProblem naming what is wrong.
 */
export function parseManifest(bytes: Buffer, contentType?: string): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new ManifestProblem('the manifest is not valid JSON');
  }
  if (!isObj(doc)) throw new ManifestProblem('the manifest is not a JSON object');
  if (doc.schemaVersion === 1) throw new ManifestProblem('Docker schema 1 manifests are not supported; push an OCI or Docker schema 2 manifest');
  if (doc.schemaVersion !== 2) throw new ManifestProblem('the manifest does not have schemaVersion 2');
  const declared = doc.mediaType;
  if (declared !== undefined && typeof declared !== 'string') throw new ManifestProblem('mediaType is not a string');
  const header = bareMediaType(contentType);
  const headerType = header && MANIFEST_MEDIA_TYPES.includes(header) ? header : undefined;
  if (declared !== undefined && headerType !== undefined && declared !== headerType) {
    throw new ManifestProblem(`Content-Type ${headerType} does not match the manifest's mediaType ${declared}`);
  }
  const mediaType = declared ?? headerType ?? (Array.isArray(doc.manifests) ? MEDIA.ociIndex : MEDIA.ociManifest);
  if (!MANIFEST_MEDIA_TYPES.includes(mediaType)) {
    throw new ManifestProblem(`media type ${mediaType} is not supported; use one of ${MANIFEST_MEDIA_TYPES.join(', ')}`);
  }
  if (mediaType === MEDIA.ociIndex || mediaType === MEDIA.dockerManifestList) {
    if (!Array.isArray(doc.manifests)) throw new ManifestProblem('the index has no manifests array');
    const refs = doc.manifests.map((d, i) => descriptor(d, `manifests[${i}]`));
    for (const [i, d] of refs.entries()) {
      if (!MANIFEST_MEDIA_TYPES.includes(d.mediaType)) throw new ManifestProblem(`manifests[${i}] has media type ${d.mediaType}, not a manifest or index`);
    }
    return { mediaType, kind: 'index', references: refs };
  }
  if (!Array.isArray(doc.layers)) throw new ManifestProblem('the manifest has no layers array');
  const config = descriptor(doc.config, 'config');
  const layers = doc.layers.map((d, i) => descriptor(d, `layers[${i}]`));
  return { mediaType, kind: 'manifest', references: [config, ...layers] };
}

/** The media type of a stored manifest blob, or undefined if the blob is not a manifest we serve. */
export function storedManifestType(bytes: Buffer): string | undefined {
  try {
    return parseManifest(bytes).mediaType;
  } catch {
    return undefined;
  }
}
