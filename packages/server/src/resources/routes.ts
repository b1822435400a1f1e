import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream';
import multipart from '@fastify/multipart';
import {
  type EnvelopeRequest,
  type ListResponse,
  SluiceError,
  type UploadResponse,
} from '@sluice/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  checkHardware,
  checkHardwareFactors,
  HARDWARE_FACTORS_SCHEMA,
  HARDWARE_SCHEMA,
} from '../auth/deviceBinding.js';
import { guardedRecord } from '../auth/guardRequest.js';
import { PASSWORD_SCHEMA } from '../auth/passwordRules.js';
import type { LeaseService } from '../leases/service.js';
import type { ResourceMeter } from '../ops/metrics.js';
import type { ResourceRecord, ResourceVersion } from '../stores/records.js';
import { ifNoneMatchHits, parseRange } from './byteRange.js';
import { exactLength } from './exactLength.js';
import { checkResourceName } from './resourceName.js';
import { ResourceService, type ResourceServiceDeps } from './service.js';
import { StepTimer } from './stepTimer.js';
import {
  discardUpload,
  parseUpload,
  type ReceivedUpload,
  receiveUpload,
} from './uploadReceiver.js';
import {
  checkRemoveQuery,
  namesOf,
  type RemoveQuery,
  removeOneVersion,
  removeQuery,
  VERSION_SCHEMA,
  versionRoutes,
} from './versionRoutes.js';

/** What the resource routes need (`cache`: null when envelopes may not skip scrypt). */
export interface ResourceRoutesDeps extends ResourceServiceDeps {
  /** Largest big part accepted by an upload, in bytes. */
  bigPartLimit: number;
  /** Whether the envelope route answers with a `Server-Timing` header. */
  serverTiming: boolean;
  /** Envelopes issued and big-part bytes sent, for `GET /metrics`. */
  meter: ResourceMeter;
  /** Signs the offline lease sent with each envelope. */
  leases: LeaseService;
}

type FolderParams = { folder: string };
type NameParams = { folder: string; name: string };
type FolderRequest = FastifyRequest<{ Params: FolderParams }>;
type BigPartRequest = FastifyRequest<{ Params: NameParams; Querystring: { version?: string } }>;

const envelopeBody = {
  type: 'object',
  required: ['fileName', 'password', 'hardware'],
  properties: {
    fileName: { type: 'string', maxLength: 1024 },
    password: PASSWORD_SCHEMA,
    hardware: HARDWARE_SCHEMA,
    hardwareFactors: HARDWARE_FACTORS_SCHEMA,
    version: VERSION_SCHEMA,
  },
} as const;

/** The service and the settings every handler of the feature uses. */
interface Feature {
  resources: ResourceService;
  deps: ResourceRoutesDeps;
}

/** Resources: upload (multipart), device envelope, list, delete and the big part over HTTP. */
export async function resourceRoutes(
  app: FastifyInstance,
  deps: ResourceRoutesDeps,
): Promise<void> {
  await app.register(multipart);
  const f: Feature = { resources: new ResourceService(deps), deps };

  app.post<{ Params: FolderParams }>(
    '/resources/:folder',
    { config: { operation: 'resources.upload' } },
    (request, reply) => upload(f, request, reply),
  );
  app.post<{ Params: FolderParams; Body: EnvelopeRequest }>(
    '/resources/get/:folder',
    { config: { operation: 'resources.get' }, schema: { body: envelopeBody } },
    (request, reply) => issueEnvelope(f, request, reply),
  );
  app.get<{ Params: FolderParams }>(
    '/resources/:folder',
    { config: { operation: 'resources.list' } },
    (request) => list(f, request),
  );
  app.delete<{ Params: NameParams; Querystring: RemoveQuery }>(
    '/resources/:folder/:name',
    { config: { operation: 'resources.delete' }, schema: { querystring: removeQuery } },
    (request, reply) => remove(f, request, reply),
  );
  versionRoutes(app, f.resources);
  app.get<{ Params: NameParams; Querystring: { version?: string } }>(
    '/resources/:folder/:name/big',
    { config: { operation: 'resources.get', requestLogLevel: 'debug' } },
    (request, reply) => readBigPart(f, request, reply),
  );
}

const folderOf = (request: FolderRequest) => checkResourceName(request.params.folder, 'folder');

async function upload(
  f: Feature,
  request: FolderRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const folder = folderOf(request);
  if (!request.isMultipart()) {
    throw new SluiceError('ERR_UNSUPPORTED_MEDIA_TYPE', 'send multipart/form-data');
  }
  const received: ReceivedUpload = { fields: {} };
  const by = request.user?.id ?? '';
  try {
    await receiveUpload(request, f.deps.partStorage, f.deps.bigPartLimit, received, (m, name) =>
      f.resources.checkManifest(folder, name, m, by),
    );
    const parsed = parseUpload(received);
    const { name } = parsed;
    const version = await f.resources.upload(folder, parsed, by, request.log);
    request.log.info(
      { event: 'resource.uploaded', folder, name, version, by },
      'resource uploaded',
    );
    return reply.status(201).send({ folder, name, version } satisfies UploadResponse);
  } finally {
    await discardUpload(received);
  }
}

async function issueEnvelope(
  f: Feature,
  request: FastifyRequest<{ Params: FolderParams; Body: EnvelopeRequest }>,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const timer = new StepTimer(f.deps.serverTiming);
  const folder = folderOf(request);
  const name = checkResourceName(request.body.fileName, 'name');
  const hardware = checkHardware(request.body.hardware);
  const { password } = request.body;
  const hardwareFactors = checkHardwareFactors(request.body.hardwareFactors);
  const ask = { folder, name, password, hardware, hardwareFactors, version: request.body.version };
  const caller = {
    userId: request.user?.id ?? '',
    address: request.ip,
    record: guardedRecord(request.user),
  };
  const issued = await f.resources.issueEnvelope(caller, ask, timer, request.log);
  // The ciphertext (~4/3 of the small part) is base64 from Buffer#toString: nothing in it
  // needs escaping, so it is spliced in instead of scanned again by JSON.stringify.
  const { ciphertext, ...fields } = issued.envelope;
  const { resource, manifest, user } = issued;
  const lease = f.deps.leases.issue({ ...user, hardware, resource, manifest });
  const serverTime = f.deps.leases.now().toISOString();
  const head = JSON.stringify({ ...fields, resource, lease, serverTime });
  const body = `${head.slice(0, -1)},"ciphertext":"${ciphertext}"}`;
  timer.lap('json');
  const timing = timer.header();
  if (timing !== undefined) reply.header('server-timing', timing);
  f.deps.meter.envelopeIssued();
  return reply.type('application/json; charset=utf-8').send(body);
}

async function list(f: Feature, request: FolderRequest): Promise<ListResponse> {
  const folder = folderOf(request);
  return { folder, resources: await f.resources.list(folder) };
}

async function remove(
  f: Feature,
  request: FastifyRequest<{ Params: NameParams; Querystring: RemoveQuery }>,
  reply: FastifyReply,
) {
  checkRemoveQuery(request.url);
  const { version } = request.query;
  if (version !== undefined) return removeOneVersion(f.resources, request, reply, Number(version));
  const { folder, name } = namesOf(request);
  const { left } = await f.resources.remove(folder, name, request.log);
  request.log.info(
    { event: 'resource.deleted', folder, name, by: request.user?.id, left },
    'resource deleted',
  );
  return reply.status(204).send();
}

async function readBigPart(f: Feature, request: BigPartRequest, reply: FastifyReply) {
  const { folder, name } = namesOf(request);
  const resource = await f.resources.find(folder, name);
  const { version, blobId } = f.resources.bigPart(resource, versionQuery(request.query.version));
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
  const stored = await f.resources.openBigPart(blobId, range);
  const promised = range === undefined ? size : range.end - range.start + 1;
  const damaged = { event: 'resource.partDamaged', folder, name, version: version.version };
  const body = exactLength(promised, (received) =>
    request.log.error(
      { ...damaged, received, promised },
      'stored big part does not match its manifest',
    ),
  );
  // Either side failing or closing (a client gone) destroys the other: no fd left open.
  pipeline(stored, f.deps.meter.bigPartBytes(), body, () => {});
  reply.type('application/octet-stream');
  if (range === undefined) {
    reply.header('content-length', String(size));
    return reply.status(200).send(body);
  }
  reply.header('content-range', `bytes ${range.start}-${range.end}/${size}`);
  reply.header('content-length', String(promised));
  return reply.status(206).send(body);
}

/** `?version=`: a positive integer of up to 9 digits, or absent (the released one). */
function versionQuery(wanted: unknown): number | undefined {
  if (wanted === undefined) return undefined;
  if (typeof wanted !== 'string' || !/^[1-9][0-9]{0,8}$/.test(wanted)) {
    throw new SluiceError('ERR_BAD_REQUEST', 'version must be a positive integer');
  }
  return Number(wanted);
}

/** Strong validator of a version's big part: the resource id, version and chunk digests. */
function bigPartEtag(resource: ResourceRecord, version: ResourceVersion): string {
  const h = createHash('sha256')
    .update(`${resource.id}|${version.version}|${version.manifest.chunks.join(',')}`)
    .digest('base64url');
  return `"${h.slice(0, 32)}"`;
}
