import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SkiffError } from '@skiff/contracts';
import { type Logger } from '@skiff/service-kit';
import type { ImageStore } from '@skiff/image';
import type { GatewayConfig } from '../config.js';
import { isClientAbort } from '../connections.js';
import type { Registry } from '../registry.js';
import { CHALLENGE, authenticateRegistry } from './auth.js';
import { BlobTooLargeError, BlobWriter, DigestMismatchError, blobSize, isSha256Digest, sweepTempFiles } from './blob-writer.js';
import { DistributionError, distError } from './errors.js';
import { MAX_MANIFEST_BYTES, ManifestProblem, parseManifest, storedManifestType } from './manifests.js';
import { fitsRef, isValidName, isValidTag, parseV2Path, refOf } from './paths.js';
import { UploadManager, type UploadSession } from './uploads.js';

export interface RegistryApiOptions {
  registry: Registry;
  store: ImageStore;
  config: Pick<GatewayConfig, 'maxBlobBytes' | 'uploadIdleMs'>;
  log: Logger;
}

const API_VERSION = { 'docker-distribution-api-version': 'registry/2.0' };
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;

type Query = Record<string, string | string[] | undefined>;

function one(q: Query, key: string): string | undefined {
  const v = q[key];
  return Array.isArray(v) ? v[0] : v;
}

function checkName(name: string): string {
  if (!isValidName(name)) {
    throw distError('NAME_INVALID', `repository name ${JSON.stringify(name.slice(0, 300))} is invalid: lowercase path components of [a-z0-9] separated by . _ __ or -`);
  }
  return name;
}

function checkDigest(digest: string | undefined, what = 'digest'): string {
  if (!isSha256Digest(digest)) {
    throw distError('DIGEST_INVALID', `${what} ${JSON.stringify(digest ?? null)} is not sha256:<64 lowercase hex>`);
  }
  return digest;
}

/** Whether the client is still sending a body we did not read: then the connection is closed. */
function bodyPending(request: FastifyRequest): boolean {
  return !request.raw.complete && !request.raw.readableEnded;
}

function hasBody(request: FastifyRequest): boolean {
  const len = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

async function readLimited(stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const piece of stream.iterator({ destroyOnReturn: false })) {
    const chunk = typeof piece === 'string' ? Buffer.from(piece) : (piece as Buffer);
    n += chunk.length;
    if (n > max) throw distError('SIZE_INVALID', `the manifest is larger than ${max} bytes`, { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, n);
}

function toDistError(err: unknown): DistributionError {
  if (err instanceof DistributionError) return err;
  if (err instanceof BlobTooLargeError) {
    return distError('SIZE_INVALID', `${err.message} (SKIFF_MAX_BLOB_BYTES); the upload was discarded`, { status: 413, cause: err });
  }
  if (err instanceof DigestMismatchError) {
    return distError('DIGEST_INVALID', `${err.message}; the upload was discarded`, { detail: { expected: err.expected, actual: err.actual }, cause: err });
  }
  if (err instanceof SkiffError) {
    switch (err.code) {
      case 'SKIFF_UNAUTHORIZED':
        return distError('UNAUTHORIZED', err.message, { headers: { 'www-authenticate': CHALLENGE } });
      case 'SKIFF_VALIDATION_FAILED':
        return distError('NAME_INVALID', err.message, { cause: err });
      case 'SKIFF_IMAGE_NOT_FOUND':
        return distError('BLOB_UNKNOWN', err.message, { cause: err });
      default:
        return distError('UNKNOWN', `${err.code}: ${err.message}`, { status: err.status, cause: err });
    }
  }
  return distError('UNKNOWN', 'internal error', { cause: err });
}

/**
 * The OCI Distribution API (push and pull) over the image store, at /v2. Its own Fastify
 * scope: bodies are not parsed (handlers stream request.raw to disk), errors use the
 * distribution spec's JSON format, and every route takes the gateway's tokens as Bearer or
 * as the password of Basic auth.
 */
export async function registryApi(app: FastifyInstance, opts: RegistryApiOptions): Promise<void> {
  const { registry, store, config, log } = opts;
  const uploads = new UploadManager(store, config.maxBlobBytes, config.uploadIdleMs);
  const swept = await sweepTempFiles(store, config.uploadIdleMs);
  if (swept > 0) log.info({ files: swept }, 'removed abandoned blob uploads');
  app.addHook('onClose', async () => uploads.close());

  app.removeAllContentTypeParsers();
  // The body stays unread in request.raw; each handler streams or caps it itself.
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));

  app.setErrorHandler((err, request, reply) => {
    if (isClientAbort(err, request)) {
      // The client closed the connection in the middle of its body (an upload keeps what arrived).
      log.debug({ callId: request.id, address: request.ip, url: request.url }, 'client closed the connection before its body was complete');
      return;
    }
    const e = toDistError(err);
    if (e.status >= 500) log.error({ err, callId: request.id, code: e.code }, e.message);
    if (bodyPending(request)) {
      // Refused before the body was read: drop the rest and close the connection after the reply.
      void reply.header('connection', 'close');
      request.raw.resume();
    }
    void reply.code(e.status).headers({ ...API_VERSION, ...e.headers }).type('application/json').send(JSON.stringify(e.toJSON()));
  });

  app.addHook('onRequest', async (request, reply) => {
    void reply.headers(API_VERSION);
    authenticateRegistry(registry, request.headers.authorization);
  });

  const location = (reply: FastifyReply, path: string) => reply.header('location', path);

  const uploadReply = (reply: FastifyReply, s: UploadSession, status: number) => {
    const end = s.writer.size > 0 ? s.writer.size - 1 : 0;
    return location(reply, `/v2/${s.name}/blobs/uploads/${s.id}`)
      .header('docker-upload-uuid', s.id)
      .header('range', `0-${end}`)
      .header('content-length', '0')
      .code(status)
      .send();
  };

  const session = (name: string, id: string): UploadSession => {
    const s = uploads.get(id);
    if (!s || s.name !== name) throw distError('BLOB_UPLOAD_UNKNOWN', `no upload ${JSON.stringify(id)} for ${name} (it finished, was cancelled, or expired after ${config.uploadIdleMs} ms)`);
    return s;
  };

  /** Runs fn with the session marked busy; a concurrent request on it gets 416. */
  const exclusive = async <T>(s: UploadSession, fn: () => Promise<T>): Promise<T> => {
    if (s.busy) throw distError('BLOB_UPLOAD_INVALID', 'another request is writing to this upload', { status: 416 });
    s.busy = true;
    try {
      return await fn();
    } finally {
      s.busy = false;
      s.lastActivity = Date.now();
    }
  };

  /** Appends the request body, dropping the session if it grew past the limit or the disk failed. */
  const appendBody = async (s: UploadSession, request: FastifyRequest): Promise<void> => {
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && s.writer.size + declared > config.maxBlobBytes) {
      await uploads.drop(s.id);
      throw new BlobTooLargeError(config.maxBlobBytes);
    }
    try {
      await s.writer.append(request.raw);
    } catch (err) {
      // A client that went away keeps its session (the bytes that arrived are counted);
      // a blob over the limit or a failed write cannot continue.
      const aborted = (err as { code?: string }).code === 'ECONNRESET' || (err as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE';
      if (!aborted) await uploads.drop(s.id);
      throw err;
    }
  };

  const blobCreated = (reply: FastifyReply, name: string, digest: string) =>
    location(reply, `/v2/${name}/blobs/${digest}`).header('docker-content-digest', digest).header('content-length', '0').code(201).send();

  // ---- blobs -------------------------------------------------------------------------

  const getBlob = async (request: FastifyRequest, reply: FastifyReply, name: string, digestParam: string) => {
    checkName(name);
    const digest = checkDigest(digestParam);
    const size = await blobSize(store, digest);
    if (size === undefined) throw distError('BLOB_UNKNOWN', `blob ${digest} is not in the store`, { detail: { digest } });
    void reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', String(size))
      .header('docker-content-digest', digest)
      .header('etag', `"${digest}"`);
    if (request.method === 'HEAD') return reply.send();
    // Verified while it streams: a blob changed on disk ends the response early, never clean.
    return reply.send(store.blobStream({ digest, size }, 'blob'));
  };

  const startUpload = async (request: FastifyRequest, reply: FastifyReply, name: string) => {
    checkName(name);
    const q = request.query as Query;
    const mount = one(q, 'mount');
    if (mount !== undefined && isSha256Digest(mount) && (await blobSize(store, mount)) !== undefined) {
      // One content-addressed store for every repository: a mount is a lookup.
      return blobCreated(reply, name, mount);
    }
    const digestParam = one(q, 'digest');
    if (digestParam !== undefined) {
      const digest = checkDigest(digestParam);
      const writer = await BlobWriter.create(store, config.maxBlobBytes);
      try {
        const declared = Number(request.headers['content-length']);
        if (Number.isFinite(declared) && declared > config.maxBlobBytes) throw new BlobTooLargeError(config.maxBlobBytes);
        await writer.append(request.raw);
        await writer.commit(digest);
      } catch (err) {
        await writer.discard();
        throw err;
      }
      return blobCreated(reply, name, digest);
    }
    const s = await uploads.start(name);
    if (!s) throw distError('TOOMANYREQUESTS', `${uploads.maxSessions} uploads are open on this gateway; finish or cancel some first`);
    if (hasBody(request)) await exclusive(s, () => appendBody(s, request));
    return uploadReply(reply, s, 202);
  };

  const checkContentRange = (request: FastifyRequest, s: UploadSession) => {
    const header = request.headers['content-range'];
    if (header === undefined) return;
    const m = /^(?:bytes )?(\d+)-(\d+)$/.exec(header.trim());
    if (!m || Number(m[1]) !== s.writer.size) {
      throw distError('BLOB_UPLOAD_INVALID', `Content-Range ${header} does not continue the upload at offset ${s.writer.size}`, {
        status: 416,
        headers: { range: `0-${Math.max(0, s.writer.size - 1)}`, location: `/v2/${s.name}/blobs/uploads/${s.id}`, 'docker-upload-uuid': s.id },
      });
    }
  };

  const patchUpload = async (request: FastifyRequest, reply: FastifyReply, name: string, id: string) => {
    const s = session(checkName(name), id);
    await exclusive(s, async () => {
      checkContentRange(request, s);
      await appendBody(s, request);
    });
    return uploadReply(reply, s, 202);
  };

  const finishUpload = async (request: FastifyRequest, reply: FastifyReply, name: string, id: string) => {
    const s = session(checkName(name), id);
    const digestParam = one(request.query as Query, 'digest');
    if (!isSha256Digest(digestParam)) {
      await uploads.drop(s.id);
      checkDigest(digestParam, 'the digest query parameter');
    }
    const digest = digestParam as string;
    await exclusive(s, async () => {
      if (hasBody(request)) {
        checkContentRange(request, s);
        await appendBody(s, request);
      }
      try {
        await s.writer.commit(digest);
      } finally {
        await uploads.drop(s.id);
      }
    });
    log.debug({ digest, name }, 'blob uploaded');
    return blobCreated(reply, name, digest);
  };

  // ---- manifests ---------------------------------------------------------------------

  const findManifest = async (name: string, reference: string): Promise<{ digest: string; bytes: Buffer; mediaType: string }> => {
    let digest: string;
    if (reference.startsWith('sha256:')) {
      digest = checkDigest(reference, 'manifest digest');
    } else {
      if (!isValidTag(reference)) throw distError('MANIFEST_INVALID', `tag ${JSON.stringify(reference)} is invalid`);
      const ref = refOf(name, reference);
      const entry = (await store.list()).filter((e) => e.ref === ref).pop();
      if (!entry) throw distError('MANIFEST_UNKNOWN', `${ref} is not in the store`, { detail: { name, tag: reference } });
      digest = entry.digest;
    }
    const size = await blobSize(store, digest);
    if (size === undefined || size > MAX_MANIFEST_BYTES) throw distError('MANIFEST_UNKNOWN', `manifest ${digest} is not in the store`, { detail: { digest } });
    const bytes = await store.readBlob(digest, size);
    const mediaType = storedManifestType(bytes);
    if (!mediaType) throw distError('MANIFEST_UNKNOWN', `blob ${digest} is not an image manifest or index`, { detail: { digest } });
    return { digest, bytes, mediaType };
  };

  const getManifest = async (request: FastifyRequest, reply: FastifyReply, name: string, reference: string) => {
    const m = await findManifest(checkName(name), reference);
    void reply
      .header('content-type', m.mediaType)
      .header('content-length', String(m.bytes.length))
      .header('docker-content-digest', m.digest)
      .header('etag', `"${m.digest}"`);
    return request.method === 'HEAD' ? reply.send() : reply.send(m.bytes);
  };

  const putManifest = async (request: FastifyRequest, reply: FastifyReply, name: string, reference: string) => {
    checkName(name);
    const byDigest = reference.startsWith('sha256:');
    if (byDigest) checkDigest(reference, 'manifest digest');
    else if (!isValidTag(reference)) throw distError('MANIFEST_INVALID', `tag ${JSON.stringify(reference)} is invalid: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
    else if (!fitsRef(name, reference)) throw distError('NAME_INVALID', `${refOf(name, reference)} is longer than 255 characters`);

    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > MAX_MANIFEST_BYTES) {
      throw distError('SIZE_INVALID', `the manifest is larger than ${MAX_MANIFEST_BYTES} bytes`, { status: 413 });
    }
    const bytes = await readLimited(request.raw, MAX_MANIFEST_BYTES);
    let parsed;
    try {
      parsed = parseManifest(bytes, request.headers['content-type']);
    } catch (err) {
      if (err instanceof ManifestProblem) throw distError('MANIFEST_INVALID', err.message);
      throw err;
    }
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (byDigest && digest !== reference) {
      throw distError('DIGEST_INVALID', `the manifest hashes to ${digest}, not ${reference}`, { detail: { expected: reference, actual: digest } });
    }
    // Everything it names must be here before the manifest is: pushes go blobs first.
    for (const d of parsed.references) {
      const size = await blobSize(store, d.digest);
      if (size === undefined) {
        throw distError('MANIFEST_BLOB_UNKNOWN', `the manifest references ${d.digest} (${d.mediaType}), which has not been pushed`, { detail: { digest: d.digest } });
      }
      if (size !== d.size) {
        throw distError('MANIFEST_INVALID', `the manifest gives ${d.digest} a size of ${d.size}, but the blob has ${size} bytes`, { detail: { digest: d.digest } });
      }
    }
    await store.putBlob(bytes, parsed.mediaType);
    if (!byDigest) {
      const ref = refOf(name, reference);
      await store.tag(ref, { mediaType: parsed.mediaType, digest, size: bytes.length });
      log.info({ ref, digest, mediaType: parsed.mediaType }, 'image pushed');
    }
    return location(reply, `/v2/${name}/manifests/${digest}`).header('docker-content-digest', digest).header('content-length', '0').code(201).send();
  };

  // ---- listings ------------------------------------------------------------------------

  const tagsList = async (request: FastifyRequest, reply: FastifyReply, name: string) => {
    checkName(name);
    const prefix = `${name}:`;
    const all = [...new Set((await store.list()).filter((e) => e.ref.startsWith(prefix)).map((e) => e.ref.slice(prefix.length)))].sort();
    if (all.length === 0) throw distError('NAME_UNKNOWN', `no tags for ${name} in the store`, { detail: { name } });
    const q = request.query as Query;
    const last = one(q, 'last');
    const nRaw = one(q, 'n');
    const n = nRaw === undefined ? undefined : Number(nRaw);
    let tags = last === undefined ? all : all.filter((t) => t > last);
    if (n !== undefined && Number.isInteger(n) && n >= 0 && tags.length > n) {
      tags = tags.slice(0, n);
      const next = tags[tags.length - 1];
      if (next !== undefined) void reply.header('link', `</v2/${name}/tags/list?n=${n}&last=${encodeURIComponent(next)}>; rel="next"`);
    }
    return reply.type('application/json').send({ name, tags });
  };

  const catalog = async (reply: FastifyReply) => {
    const names = new Set<string>();
    for (const e of await store.list()) {
      const colon = e.ref.lastIndexOf(':');
      if (colon > 0) names.add(e.ref.slice(0, colon));
    }
    return reply.type('application/json').send({ repositories: [...names].sort() });
  };

  // ---- dispatch ------------------------------------------------------------------------

  const unsupported = (what: string) => distError('UNSUPPORTED', `${what} is not supported by this registry`);

  const dispatch = async (request: FastifyRequest, reply: FastifyReply) => {
    const rawPath = request.url.split('?')[0]!;
    const route = parseV2Path(rawPath === '/v2' ? '' : rawPath.slice('/v2/'.length));
    const m = request.method;
    switch (route.kind) {
      case 'base':
        if (m === 'GET' || m === 'HEAD') return reply.type('application/json').send('{}');
        break;
      case 'catalog':
        if (m === 'GET') return catalog(reply);
        break;
      case 'blob':
        if (m === 'GET' || m === 'HEAD') return getBlob(request, reply, route.name, route.digest);
        if (m === 'DELETE') throw unsupported('deleting blobs');
        break;
      case 'uploads':
        if (m === 'POST') return startUpload(request, reply, route.name);
        break;
      case 'upload':
        if (m === 'PATCH') return patchUpload(request, reply, route.name, route.id);
        if (m === 'PUT') return finishUpload(request, reply, route.name, route.id);
        if (m === 'GET') {
          const s = session(checkName(route.name), route.id);
          return uploadReply(reply, s, 204);
        }
        if (m === 'DELETE') {
          session(checkName(route.name), route.id);
          await uploads.drop(route.id);
          return reply.code(204).send();
        }
        break;
      case 'manifest':
        if (m === 'GET' || m === 'HEAD') return getManifest(request, reply, route.name, route.reference);
        if (m === 'PUT') return putManifest(request, reply, route.name, route.reference);
        if (m === 'DELETE') throw unsupported('deleting manifests');
        break;
      case 'tags':
        if (m === 'GET') return tagsList(request, reply, route.name);
        break;
      case 'unknown':
        throw distError('NAME_UNKNOWN', `no registry route ${m} ${rawPath}`, { status: 404 });
    }
    throw distError('UNSUPPORTED', `${m} is not supported on ${rawPath}`);
  };

  app.route({ method: [...METHODS], url: '/v2', handler: dispatch });
  app.route({ method: [...METHODS], url: '/v2/*', handler: dispatch });
}
