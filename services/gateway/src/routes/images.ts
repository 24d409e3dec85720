import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Descriptor, ImageStore } from '@skiff/image';
import type { GatewayConfig } from '../config.js';
import type { Handlers } from '../openapi.js';
import type { Registry } from '../registry.js';
import { importArchive } from '../registry-api/archive.js';
import { MAX_MANIFEST_BYTES, parseManifest } from '../registry-api/manifests.js';

const IMPORT_PATH = '/v1/images';

/** Request bodies of POST /v1/images, set aside unread by the preParsing hook below. */
const archiveBodies = new WeakMap<FastifyRequest, Readable>();

/**
 * POST /v1/images takes an image archive of any size, so it must not go through the raw-body
 * parser (which buffers up to SKIFF_MAX_BODY_BYTES). This hook adjusts that one route as it
 * is registered: its body limit becomes SKIFF_MAX_ARCHIVE_BYTES (so a declared length over it
 * gets 413 before anything is read), and a preParsing hook keeps the request stream for the
 * handler, handing the parser an empty one. Auth and validation still run first: the handler
 * reads the archive only after both passed. Call before the operations are registered.
 */
export function streamImageArchives(app: FastifyInstance, maxArchiveBytes: number): void {
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat();
    if (route.url !== IMPORT_PATH || !methods.includes('POST')) return;
    route.bodyLimit = maxArchiveBytes;
    const before = route.preParsing === undefined ? [] : [route.preParsing].flat();
    route.preParsing = [
      ...before,
      async (request, _reply, payload) => {
        archiveBodies.set(request, payload);
        const empty = Readable.from([]) as Readable & { receivedEncodedLength?: number };
        // Fastify compares what the parser received with Content-Length; the real count is ours.
        empty.receivedEncodedLength = Number(request.headers['content-length']) || 0;
        return empty;
      },
    ];
  });
}

interface ImageSummary {
  ref: string;
  digest: string;
  mediaType?: string;
  /** Bytes of all blobs of the image (manifests, configs, compressed layers), each counted once. */
  size?: number;
}

/** Media type and total size of a tagged image, from its manifests; undefined parts if unreadable. */
async function summarize(store: ImageStore, entry: { ref: string; digest: string; size: number }): Promise<ImageSummary> {
  const seen = new Map<string, number>();
  let mediaType: string | undefined;
  const walk = async (d: Pick<Descriptor, 'digest' | 'size'>, depth: number): Promise<string> => {
    seen.set(d.digest, d.size);
    if (d.size > MAX_MANIFEST_BYTES * 2) throw new Error('too large for a manifest');
    const parsed = parseManifest(await store.readBlob(d.digest, d.size));
    for (const r of parsed.references) {
      if (parsed.kind === 'index' && depth < 4) await walk(r, depth + 1);
      else seen.set(r.digest, r.size);
    }
    return parsed.mediaType;
  };
  try {
    mediaType = await walk(entry, 0);
  } catch {
    return { ref: entry.ref, digest: entry.digest, ...(mediaType ? { mediaType } : {}) };
  }
  const size = [...seen.values()].reduce((a, b) => a + b, 0);
  return { ref: entry.ref, digest: entry.digest, mediaType, size };
}

/** The image store seen from /v1: list what is tagged, import oci-archives. */
export function imageHandlers(store: ImageStore, registry: Registry, config: Pick<GatewayConfig, 'maxBlobBytes' | 'maxArchiveBytes'>): Handlers {
  return {
    // Every version stays runnable: the images of all deployed versions are roots of the mark.
    collectImageGarbage: ({ body }) => {
      const graceSeconds = (body as { graceSeconds?: number } | undefined)?.graceSeconds ?? 3600;
      return store.gc(registry.deployedDigests(), { graceMs: graceSeconds * 1000 });
    },
    listImages: async () => {
      const entries = await store.list();
      const images = await Promise.all(entries.map((e) => summarize(store, e)));
      images.sort((a, b) => a.ref.localeCompare(b.ref));
      return { images };
    },
    importImages: async ({ request, reply }) => {
      const body = archiveBodies.get(request) ?? Readable.from(Buffer.isBuffer(request.body) ? [request.body] : []);
      const repository = (request.query as { repository?: string }).repository;
      let imported;
      try {
        imported = await importArchive(store, body, repository, { maxArchiveBytes: config.maxArchiveBytes, maxBlobBytes: config.maxBlobBytes });
      } catch (err) {
        // Refused part-way through: do not wait for (or keep the connection after) the rest.
        if (!request.raw.complete) void reply.header('connection', 'close');
        throw err;
      }
      request.log.info({ images: imported.map((i) => `${i.ref}@${i.digest}`) }, 'images imported');
      return reply.code(201).send({ images: await Promise.all(imported.map((i) => summarize(store, i))) });
    },
  };
}
