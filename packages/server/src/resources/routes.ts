import { createHash, randomUUID } from 'node:crypto';
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import multipart, { type Multipart } from '@fastify/multipart';
import {
  deriveEnvelopeKey,
  envelopeAad,
  isSluiceError,
  type Manifest,
  sealEnvelope,
  sha256FileChunks,
  validateManifest,
} from '@sluice/core';
import { cdnObjectKey, isObjectKey, SluiceError } from '@sluice/protocol';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bindDevice, checkHardware } from '../auth/deviceBinding.js';
import { checkEnvelopePassword } from '../auth/envelopePassword.js';
import { PASSWORD_MAX_LENGTH } from '../auth/userAccounts.js';
import { isApiError } from '../errors.js';
import { ifNoneMatchHits, parseRange } from '../resources/byteRange.js';
import { EnvelopeCache } from '../resources/envelopeCache.js';
import { exactLength } from '../resources/exactLength.js';
import { checkResourceName } from '../resources/resourceName.js';
import { StepTimer } from '../resources/stepTimer.js';
import type { ServerContext } from '../serverContext.js';
import { dataKeyAad, unwrapDataKey, wrapDataKey } from '../stores/masterKey.js';
import {
  type ResourceRecord,
  type ResourceVersion,
  resourceKey,
  type UserRecord,
} from '../stores/metadataStore.js';
import type { PendingBlob } from '../stores/partStorage.js';

const MiB = 1024 * 1024;
/** Largest small part accepted (the split rule keeps it far below this in practice). */
export const SMALL_PART_LIMIT = 16 * MiB;
/** Default largest big part the embedded store accepts (`ServerOptions.bigPartLimit`). */
export const DEFAULT_BIG_PART_LIMIT = 64 * 1024 * MiB;
/** The manifest of a 64 GiB part in 8 MiB chunks is about 0.6 MB of JSON. */
const FIELD_LIMIT = 4 * MiB;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

type FolderRequest = FastifyRequest<{ Params: { folder: string } }>;

/** Fails the stream with 413 once more than `limit` bytes pass. */
class SizeLimit extends Transform {
  private seen = 0;
  constructor(
    private readonly limit: number,
    private readonly what: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      done(new SluiceError('ERR_TOO_LARGE', `${this.what} exceeds ${this.limit} bytes`));
      return;
    }
    done(null, chunk);
  }
}

interface ReceivedUpload {
  fields: Partial<Record<'name' | 'manifest' | 'dataKey' | 'cdnKey', unknown>>;
  small?: PendingBlob;
  big?: PendingBlob;
}

const FIELD_NAMES = new Set(['name', 'manifest', 'dataKey', 'cdnKey']);

/** Streams the multipart body: fields into memory (bounded), file parts into temp blobs. */
async function receiveUpload(
  request: FastifyRequest,
  ctx: ServerContext,
  received: ReceivedUpload,
): Promise<void> {
  const parts = request.parts({
    limits: {
      fileSize: Math.max(SMALL_PART_LIMIT, ctx.bigPartLimit) + 1,
      fieldSize: FIELD_LIMIT,
      files: 2,
      fields: 4,
      parts: 6,
    },
  });
  // After a failure the remaining parts are dropped unread (destroying a file stream ends the
  // parse), so the answer goes out at once.
  let failure: unknown;
  try {
    for await (const part of parts) {
      if (failure !== undefined) {
        if (part.type === 'file') part.file.destroy();
        continue;
      }
      try {
        await receivePart(part, ctx, received);
      } catch (e) {
        failure = e;
        if (part.type === 'file' && !part.file.destroyed) part.file.destroy();
      }
    }
  } catch (e) {
    // Thrown by the parser itself (no boundary, not multipart inside): the client's fault. Its
    // own limit errors carry a 4xx statusCode and keep it; storage errors come from receivePart.
    failure ??= isApiError(e) || hasClientStatus(e) ? e : malformedMultipart(e);
  }
  if (failure !== undefined) {
    // The parser is unpiped by now; read and drop the rest of the body so that the client,
    // still sending, gets to read the answer (HTTP/1.1 clients rarely read before they finish).
    request.raw.resume();
    throw failure;
  }
}

function hasClientStatus(e: unknown): boolean {
  const status = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}

function malformedMultipart(e: unknown): SluiceError {
  return new SluiceError('ERR_BAD_REQUEST', 'malformed multipart body', { cause: e });
}

async function receivePart(
  part: Multipart,
  ctx: ServerContext,
  received: ReceivedUpload,
): Promise<void> {
  if (part.type === 'field') {
    if (!FIELD_NAMES.has(part.fieldname)) {
      throw new SluiceError('ERR_BAD_REQUEST', `unknown field ${part.fieldname.slice(0, 64)}`);
    }
    if (part.valueTruncated) {
      throw new SluiceError(
        'ERR_TOO_LARGE',
        `field ${part.fieldname} exceeds ${FIELD_LIMIT} bytes`,
      );
    }
    const key = part.fieldname as keyof ReceivedUpload['fields'];
    if (received.fields[key] !== undefined) {
      throw new SluiceError('ERR_BAD_REQUEST', `field ${key} given twice`);
    }
    received.fields[key] = part.value;
    // Refuse a bad name before any file part is stored.
    if (key === 'name') checkResourceName(part.value, 'name');
    return;
  }
  const which = part.fieldname;
  if (which !== 'small' && which !== 'big') {
    throw new SluiceError('ERR_BAD_REQUEST', `unknown file part ${which.slice(0, 64)}`);
  }
  if (received[which] !== undefined) {
    throw new SluiceError('ERR_BAD_REQUEST', `file part ${which} given twice`);
  }
  const limit = which === 'small' ? SMALL_PART_LIMIT : ctx.bigPartLimit;
  received[which] = await ctx.blobs.receive(part.file, new SizeLimit(limit, `${which} part`));
}

function parseManifestField(value: unknown): Manifest {
  let parsed = value;
  if (typeof value === 'string') {
    try {
      parsed = JSON.parse(value);
    } catch {
      throw new SluiceError('ERR_BAD_REQUEST', 'manifest is not valid JSON');
    }
  }
  try {
    return validateManifest(parsed);
  } catch (e) {
    if (isSluiceError(e, 'ERR_BAD_MANIFEST')) throw new SluiceError('ERR_BAD_REQUEST', e.message);
    throw e;
  }
}

function parseDataKeyField(value: unknown): Buffer {
  if (typeof value !== 'string' || !BASE64.test(value.trim())) {
    throw new SluiceError('ERR_BAD_REQUEST', 'dataKey must be base64');
  }
  const key = Buffer.from(value.trim(), 'base64');
  if (key.length !== 32) throw new SluiceError('ERR_BAD_REQUEST', 'dataKey must be 32 bytes');
  return key;
}

/** Throws 400 unless the big part is exactly the one the manifest describes. */
async function checkBigPart(big: PendingBlob, manifest: Manifest): Promise<void> {
  if (big.size !== manifest.bigSize) {
    throw new SluiceError(
      'ERR_BAD_REQUEST',
      `big part is ${big.size} bytes; the manifest says ${manifest.bigSize}`,
    );
  }
  const digests = await sha256FileChunks(big.path, manifest.chunkSize);
  const bad = digests.findIndex((d, i) => d.toString('hex') !== manifest.chunks[i]);
  if (bad !== -1 || digests.length !== manifest.chunks.length) {
    throw new SluiceError(
      'ERR_BAD_REQUEST',
      `big part chunk ${bad === -1 ? digests.length : bad} does not match the manifest's digest`,
    );
  }
}

/**
 * With an S3 CDN, a `cdnKey` upload is registered only when the object is there with the
 * manifest's size (HEAD), and no other resource claims it (deleting that one would remove it).
 */
async function checkCdnObject(
  ctx: ServerContext,
  folder: string,
  name: string,
  cdnKey: string,
  manifest: Manifest,
): Promise<void> {
  if (ctx.cdnObjects === null || ctx.cdn.kind !== 's3') return;
  const own = resourceKey(folder, name);
  const claimed = Object.entries(ctx.store.snapshot().resources).some(
    ([key, r]) => key !== own && r.versions.some((v) => v.cdnKey === cdnKey),
  );
  if (claimed) {
    throw new SluiceError('ERR_CONFLICT', `cdnKey ${cdnKey} belongs to another resource`);
  }
  const head = await ctx.cdnObjects.exists(cdnObjectKey(ctx.cdn.prefix, cdnKey));
  if (head === null) {
    throw new SluiceError('ERR_BAD_REQUEST', `cdnKey ${cdnKey} does not exist on the CDN`);
  }
  if (head.size !== manifest.bigSize) {
    throw new SluiceError(
      'ERR_BAD_REQUEST',
      `the CDN object of cdnKey ${cdnKey} is ${head.size} bytes; the manifest says ${manifest.bigSize}`,
    );
  }
}

function latest(resource: ResourceRecord): ResourceVersion {
  const v = resource.versions.at(-1);
  if (v === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such resource');
  return v;
}

/** Strong validator of a version's big part: the resource id, version and chunk digests. */
function bigPartEtag(resource: ResourceRecord, version: ResourceVersion): string {
  const h = createHash('sha256')
    .update(`${resource.id}|${version.version}|${version.manifest.chunks.join(',')}`)
    .digest('base64url');
  return `"${h.slice(0, 32)}"`;
}

/**
 * The caller, its password checked: from the envelope cache when this (user, password, device)
 * was verified before and nothing it depended on changed (with the envelope key), else by scrypt
 * (`key` undefined). A wrong password always takes the scrypt path and counts as a failure. While
 * one request verifies in full, the same request from the same device waits for it and then
 * looks again. `done` must be called once the key is remembered (or the request failed).
 */
async function verifyEnvelopeRequest(
  ctx: ServerContext,
  request: FastifyRequest,
  cache: EnvelopeCache | null,
  password: string,
  hardware: string,
): Promise<{ user: UserRecord; key: Buffer | undefined; done: () => void }> {
  const noop = () => {};
  let done = noop;
  const cached = (u: UserRecord | undefined): UserRecord | undefined => {
    if (cache === null || u === undefined || ctx.limiter.accountWait(u.email) !== undefined) {
      return undefined;
    }
    return u;
  };
  let user = cached(ctx.store.getUser(request.user?.id ?? ''));
  if (cache !== null && user !== undefined) {
    let key = cache.envelopeKey(user, password, hardware);
    if (key === undefined) {
      const turn = cache.verifying(user, password, hardware);
      if (turn.wait === undefined) done = turn.done;
      else {
        await turn.wait;
        user = cached(ctx.store.getUser(user.id));
        key = user === undefined ? undefined : cache.envelopeKey(user, password, hardware);
      }
    }
    if (key !== undefined && user !== undefined) {
      ctx.limiter.succeeded(user.email);
      return { user, key, done: noop };
    }
  }
  try {
    return { user: await checkEnvelopePassword(ctx, request, password), key: undefined, done };
  } catch (e) {
    done();
    throw e;
  }
}

/** The envelope cache is on unless `SLUICE_ENVELOPE_CACHE=off` (bench:api measures both). */
function envelopeCacheOf(app: FastifyInstance): EnvelopeCache | null {
  if (process.env.SLUICE_ENVELOPE_CACHE === 'off') return null;
  const cache = new EnvelopeCache();
  const sweeper = setInterval(() => cache.sweep(), 60_000);
  sweeper.unref();
  app.addHook('onClose', async () => {
    clearInterval(sweeper);
    cache.clear();
  });
  return cache;
}

/** Resources: upload (multipart), device envelope, list, delete and the big part over HTTP. */
export async function resourceRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  await app.register(multipart);
  const cache = envelopeCacheOf(app);

  const folderOf = (request: FolderRequest) => checkResourceName(request.params.folder, 'folder');

  const findResource = (folder: string, name: string): ResourceRecord => {
    const resource = ctx.store.getResource(folder, name);
    if (resource === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such resource');
    return resource;
  };

  app.post<{ Params: { folder: string } }>(
    '/resources/:folder',
    { config: { operation: 'resources.upload' } },
    async (request, reply) => {
      const folder = folderOf(request);
      if (!request.isMultipart()) {
        throw new SluiceError('ERR_UNSUPPORTED_MEDIA_TYPE', 'send multipart/form-data');
      }
      const received: ReceivedUpload = { fields: {} };
      const committed: string[] = [];
      try {
        await receiveUpload(request, ctx, received);
        const { fields, small, big } = received;
        const name = checkResourceName(fields.name, 'name');
        if (fields.manifest === undefined)
          throw new SluiceError('ERR_BAD_REQUEST', 'manifest missing');
        const manifest = parseManifestField(fields.manifest);
        const dataKey = parseDataKeyField(fields.dataKey);
        let cdnKey: string | null = null;
        if (fields.cdnKey !== undefined) {
          if (!isObjectKey(fields.cdnKey)) {
            throw new SluiceError('ERR_BAD_REQUEST', 'invalid cdnKey');
          }
          cdnKey = fields.cdnKey;
        }
        if (small === undefined)
          throw new SluiceError('ERR_BAD_REQUEST', 'file part small missing');
        if (small.size !== manifest.smallSize) {
          throw new SluiceError(
            'ERR_BAD_REQUEST',
            `small part is ${small.size} bytes; the manifest says ${manifest.smallSize}`,
          );
        }
        if (big === undefined && cdnKey === null) {
          throw new SluiceError(
            'ERR_BAD_REQUEST',
            'send the big part, or the cdnKey that holds it',
          );
        }
        if (big !== undefined) await checkBigPart(big, manifest);
        if (cdnKey !== null) await checkCdnObject(ctx, folder, name, cdnKey, manifest);

        const smallBlobId = await ctx.blobs.commit(small);
        committed.push(smallBlobId);
        const bigBlobId = big === undefined ? null : await ctx.blobs.commit(big);
        if (bigBlobId !== null) committed.push(bigBlobId);
        const uploadedBy = request.user?.id ?? '';
        const version = await ctx.store.mutate((draft) => {
          const key = resourceKey(folder, name);
          const existing = Object.hasOwn(draft.resources, key) ? draft.resources[key] : undefined;
          const resource = existing ?? { id: randomUUID(), folder, name, versions: [] };
          draft.resources[key] = resource;
          const number = (resource.versions.at(-1)?.version ?? 0) + 1;
          resource.versions.push({
            version: number,
            manifest,
            smallBlobId,
            bigBlobId,
            cdnKey,
            wrappedDataKey: wrapDataKey(ctx.masterKey, dataKey, dataKeyAad(resource.id, number)),
            createdAt: new Date().toISOString(),
            uploadedBy,
          });
          return number;
        });
        committed.length = 0;
        dataKey.fill(0);
        request.log.info(
          { event: 'resource.uploaded', folder, name, version, by: uploadedBy },
          'resource uploaded',
        );
        return reply.status(201).send({ folder, name, version });
      } finally {
        await Promise.all([
          received.small?.discard(),
          received.big?.discard(),
          ...committed.map((id) => ctx.blobs.remove(id)),
        ]);
      }
    },
  );

  app.post<{
    Params: { folder: string };
    Body: { fileName: string; password: string; hardware: string };
  }>(
    '/resources/get/:folder',
    {
      config: { operation: 'resources.get' },
      schema: {
        body: {
          type: 'object',
          required: ['fileName', 'password', 'hardware'],
          properties: {
            fileName: { type: 'string', maxLength: 1024 },
            password: { type: 'string', minLength: 1, maxLength: PASSWORD_MAX_LENGTH * 4 },
            hardware: { type: 'string', maxLength: 1024 },
          },
        },
      },
    },
    async (request, reply) => {
      const timer = new StepTimer();
      const folder = folderOf(request);
      const name = checkResourceName(request.body.fileName, 'name');
      const hardware = checkHardware(request.body.hardware);
      const { password } = request.body;
      const verified = await verifyEnvelopeRequest(ctx, request, cache, password, hardware);
      const { user } = verified;
      timer.lap('auth');
      timer.note('cache', verified.key === undefined ? 'miss' : 'hit');
      let key = verified.key;
      let dataKey: Buffer | undefined;
      try {
        const resource = findResource(folder, name);
        const version = latest(resource);
        await bindDevice(ctx, request, user, hardware);
        if (key === undefined) {
          key = await deriveEnvelopeKey(user.email, password, hardware);
          // Remembered against the record the password was verified with, not a later one.
          cache?.rememberKey(user, password, hardware, key);
        }
        timer.lap('kdf');
        const smallBlobId = version.smallBlobId;
        const readSmall = () => ctx.blobs.readAll(smallBlobId, SMALL_PART_LIMIT);
        const small = await (cache === null
          ? readSmall()
          : cache.smallPart(smallBlobId, readSmall));
        timer.lap('read');
        dataKey = unwrapDataKey(
          ctx.masterKey,
          version.wrappedDataKey,
          dataKeyAad(resource.id, version.version),
        );
        const described = { folder, name, version: version.version };
        const envelope = sealEnvelope(
          key,
          {
            resource: described,
            manifest: version.manifest,
            dataKey,
            small,
            cdnKey: version.cdnKey,
          },
          envelopeAad(described),
        );
        timer.lap('seal');
        request.log.info(
          { event: 'envelope.issued', folder, name, version: version.version, userId: user.id },
          'envelope issued',
        );
        // The ciphertext (~4/3 of the small part) is base64 from Buffer#toString: nothing in it
        // needs escaping, so it is spliced in instead of scanned again by JSON.stringify.
        const { ciphertext, ...fields } = envelope;
        const head = JSON.stringify({ ...fields, resource: described });
        const body = `${head.slice(0, -1)},"ciphertext":"${ciphertext}"}`;
        timer.lap('json');
        const timing = timer.header();
        if (timing !== undefined) reply.header('server-timing', timing);
        return reply.type('application/json; charset=utf-8').send(body);
      } finally {
        verified.done();
        key?.fill(0);
        dataKey?.fill(0);
      }
    },
  );

  app.get<{ Params: { folder: string } }>(
    '/resources/:folder',
    { config: { operation: 'resources.list' } },
    async (request) => {
      const folder = folderOf(request);
      return {
        folder,
        resources: ctx.store.listResources(folder).map((r) => {
          const v = latest(r);
          return {
            name: r.name,
            version: v.version,
            versions: r.versions.length,
            blobSize: v.manifest.blobSize,
            smallSize: v.manifest.smallSize,
            bigSize: v.manifest.bigSize,
            bigStored: v.bigBlobId !== null,
            createdAt: v.createdAt,
          };
        }),
      };
    },
  );

  app.delete<{ Params: { folder: string; name: string } }>(
    '/resources/:folder/:name',
    { config: { operation: 'resources.delete' } },
    async (request, reply) => {
      const folder = checkResourceName(request.params.folder, 'folder');
      const name = checkResourceName(request.params.name, 'name');
      const removed = await ctx.store.mutate((draft) => {
        const key = resourceKey(folder, name);
        const r = Object.hasOwn(draft.resources, key) ? draft.resources[key] : undefined;
        if (r === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such resource');
        delete draft.resources[key];
        return r;
      });
      // The metadata no longer points at them: a failure here only leaves unreferenced objects.
      const parts = removed.versions.flatMap((v) =>
        v.bigBlobId === null ? [v.smallBlobId] : [v.smallBlobId, v.bigBlobId],
      );
      for (const v of removed.versions) cache?.forgetSmall(v.smallBlobId);
      const cdnKeys = new Set(
        removed.versions.flatMap((v) => (v.cdnKey === null ? [] : [v.cdnKey])),
      );
      const left: string[] = [];
      for (const id of parts) {
        await ctx.blobs.remove(id).catch((e: unknown) => {
          left.push(id);
          request.log.warn({ event: 'resource.partLeft', id, err: e }, 'stored part not removed');
        });
      }
      if (ctx.cdnObjects !== null) {
        for (const key of cdnKeys) {
          const objectKey = cdnObjectKey(ctx.cdn.kind === 's3' ? ctx.cdn.prefix : null, key);
          await ctx.cdnObjects.remove(objectKey).catch((e: unknown) => {
            left.push(objectKey);
            request.log.warn(
              { event: 'resource.cdnObjectLeft', key: objectKey, err: e },
              'CDN object not removed',
            );
          });
        }
      }
      request.log.info(
        { event: 'resource.deleted', folder, name, by: request.user?.id, left: left.length },
        'resource deleted',
      );
      return reply.status(204).send();
    },
  );

  app.get<{ Params: { folder: string; name: string }; Querystring: { version?: string } }>(
    '/resources/:folder/:name/big',
    { config: { operation: 'resources.get' } },
    async (request, reply) => {
      const folder = checkResourceName(request.params.folder, 'folder');
      const name = checkResourceName(request.params.name, 'name');
      const resource = findResource(folder, name);
      let version = latest(resource);
      const wanted = request.query.version;
      if (wanted !== undefined) {
        if (typeof wanted !== 'string' || !/^[1-9][0-9]{0,8}$/.test(wanted)) {
          throw new SluiceError('ERR_BAD_REQUEST', 'version must be a positive integer');
        }
        const found = resource.versions.find((v) => v.version === Number(wanted));
        if (found === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such version');
        version = found;
      }
      if (version.bigBlobId === null) {
        throw new SluiceError('ERR_NOT_FOUND', 'this version keeps its big part on the CDN only');
      }
      const size = version.manifest.bigSize;
      const etag = bigPartEtag(resource, version);
      reply.header('etag', etag);
      reply.header('accept-ranges', 'bytes');
      reply.header('cache-control', 'private, no-cache');
      if (ifNoneMatchHits(request.headers['if-none-match'], etag)) {
        return reply.status(304).send();
      }
      const ifRange = request.headers['if-range'];
      const rangeHeader = request.headers.range;
      const range =
        rangeHeader !== undefined && (ifRange === undefined || ifRange === etag)
          ? parseRange(rangeHeader, size)
          : undefined;
      if (range === 'unsatisfiable') {
        reply.header('content-range', `bytes */${size}`);
        return reply.status(416).send({
          error: `range ${rangeHeader?.slice(0, 64)} is outside the ${size}-byte big part`,
          code: 'ERR_RANGE_NOT_SATISFIABLE',
        });
      }
      const stored = await ctx.blobs.openRead(version.bigBlobId, range);
      const promised = range === undefined ? size : range.end - range.start + 1;
      const body = exactLength(promised, (received) =>
        request.log.error(
          {
            event: 'resource.partDamaged',
            folder,
            name,
            version: version.version,
            received,
            promised,
          },
          'stored big part does not match its manifest',
        ),
      );
      // Either side failing or closing (a client gone) destroys the other: no fd left open.
      pipeline(stored, body, () => {});
      reply.type('application/octet-stream');
      if (range === undefined) {
        reply.header('content-length', String(size));
        return reply.status(200).send(body);
      }
      reply.header('content-range', `bytes ${range.start}-${range.end}/${size}`);
      reply.header('content-length', String(range.end - range.start + 1));
      return reply.status(206).send(body);
    },
  );
}
