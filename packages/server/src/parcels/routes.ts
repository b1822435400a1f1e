import {
  type ParcelMetadataResponse,
  type ParcelOwnerResponse,
  type ParcelPutResponse,
  type ParcelTokenRequest,
  type ParcelTokenResponse,
  SluiceError,
} from '@sluice/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseOperation, parseParcelId, parseTokenUser } from './parcelRequest.js';
import { ParcelService, type ParcelServiceDeps, type SignedRequest } from './service.js';

/** Largest `POST /api/v1/auth` body. */
export const PARCEL_AUTH_BODY_LIMIT = 1024;

const tokenBody = {
  type: 'object',
  required: ['user', 'operation'],
  properties: { user: { type: 'string' }, operation: { type: 'object' } },
} as const;

const open = { operation: 'public' } as const;

type IdRoute = { Params: { id: string }; Querystring: { key?: unknown } };
type IdRequest = FastifyRequest<IdRoute>;
/** Typed by the handler: the schema only says which fields must be there. */
type TokenBody = Partial<Record<keyof ParcelTokenRequest, unknown>>;

/** The service and the size limit every handler of the feature uses. */
interface Feature {
  parcels: ParcelService;
  sizeLimit: number;
}

/**
 * The parcel API: one-time operation tokens (`POST /api/v1/auth`) and parcels stored, fetched,
 * inspected and removed with them (`/api/v1/parcels`). See docs/API.md, "Parcels".
 */
export async function parcelRoutes(app: FastifyInstance, deps: ParcelServiceDeps): Promise<void> {
  const f: Feature = { parcels: await ParcelService.open(deps), sizeLimit: deps.sizeLimit };
  // The upload body stays unread until the handler has checked the token, then streams to storage.
  app.addContentTypeParser('application/octet-stream', (_request, _payload, done) => done(null));

  app.post<{ Body: TokenBody }>(
    '/api/v1/auth',
    { config: open, bodyLimit: PARCEL_AUTH_BODY_LIMIT, schema: { body: tokenBody } },
    (request) => issueToken(f, request),
  );
  app.post('/api/v1/parcels', { config: open }, (request, reply) => putParcel(f, request, reply));
  app.get<IdRoute>('/api/v1/parcels/:id', { config: open }, (request, reply) =>
    getParcel(f, request, reply),
  );
  app.delete<IdRoute>('/api/v1/parcels/:id', { config: open }, (request, reply) =>
    removeParcel(f, request, reply),
  );
}

async function issueToken(
  f: Feature,
  request: FastifyRequest<{ Body: TokenBody }>,
): Promise<ParcelTokenResponse> {
  const extra = Object.keys(request.body).filter((k) => k !== 'user' && k !== 'operation');
  if (extra.length > 0) {
    throw new SluiceError('ERR_BAD_REQUEST', `unknown field ${extra[0]?.slice(0, 64)}`);
  }
  const user = parseTokenUser(request.body.user);
  const operation = parseOperation(request.body.operation);
  return { token: await f.parcels.issueToken(request.ip, user, operation, request.log) };
}

async function putParcel(
  f: Feature,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  try {
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > f.sizeLimit) {
      throw new SluiceError('ERR_TOO_LARGE', `parcel exceeds ${f.sizeLimit} bytes`);
    }
    const type = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/octet-stream') {
      throw new SluiceError(
        'ERR_UNSUPPORTED_MEDIA_TYPE',
        'send the parcel as application/octet-stream',
      );
    }
    const { id, existed } = await f.parcels.put(signedBy(request), request.raw);
    return reply.status(existed ? 200 : 201).send({ id } satisfies ParcelPutResponse);
  } catch (e) {
    // Drain what the client still sends so that it gets to read the answer.
    request.raw.resume();
    throw e;
  }
}

async function getParcel(
  f: Feature,
  request: IdRequest,
  reply: FastifyReply,
): Promise<FastifyReply | ParcelMetadataResponse | ParcelOwnerResponse> {
  const id = parseParcelId(request.params.id);
  const { key } = request.query;
  if (key !== undefined) {
    if (key !== 'metadata' && key !== 'owner') {
      throw new SluiceError('ERR_BAD_REQUEST', 'key must be metadata or owner');
    }
    const inspected = await f.parcels.inspect(id, key);
    return inspected === 'gone' ? gone(reply) : inspected;
  }
  const parcel = await f.parcels.read(signedBy(request), id);
  if (parcel === 'gone') return gone(reply);
  reply.type('application/octet-stream');
  reply.header('content-length', String(parcel.size));
  reply.header('cache-control', 'private, no-store');
  return reply.status(200).send(parcel.body);
}

async function removeParcel(
  f: Feature,
  request: IdRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const id = parseParcelId(request.params.id);
  const removed = await f.parcels.remove(signedBy(request), id);
  return removed === 'gone' ? gone(reply) : reply.status(204).send();
}

/** The signature headers of a parcel request, as they came. */
function signedBy(request: FastifyRequest): SignedRequest {
  return {
    token: request.headers['x-auth-token'],
    publicKey: request.headers['x-public-key'],
    signature: request.headers['x-signature'],
    log: request.log,
  };
}

function gone(reply: FastifyReply): FastifyReply {
  return reply.status(410).send({ error: 'parcel removed', code: 'ERR_GONE' });
}
