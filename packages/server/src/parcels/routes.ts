import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { SluiceError } from '@sluice/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LoginLimiter, type LoginLimits } from '../auth/loginLimiter.js';
import type { ServerContext } from '../serverContext.js';
import type { PendingBlob } from '../stores/partStorage.js';
import { verifyParcelSignature } from './parcelSignature.js';
import { ParcelStore } from './parcelStore.js';
import {
  type ParcelClaims,
  type ParcelOperation,
  type ParcelOperationName,
  ParcelTokens,
} from './parcelTokens.js';

/**
 * `POST /api/v1/auth` limits: token requests per client address, and tokens issued per user
 * (counted as the limiter's per-account "failures", which nothing else clears within a window).
 */
export const PARCEL_AUTH_LIMITS: Readonly<LoginLimits> = {
  perAddress: { limit: 120, windowSeconds: 60 },
  perAccount: { limit: 60, windowSeconds: 60 },
};
/** Largest `POST /api/v1/auth` body. */
export const PARCEL_AUTH_BODY_LIMIT = 1024;
/** Longest `X-Auth-Token` looked at (ours are about 400 characters). */
const TOKEN_MAX_LENGTH = 4096;
const ADDRESS = /^[0-9a-f]{40}$/;
const HEX64 = /^[0-9a-f]{64}$/;

/** The parcel id of content `sha256` uploaded by `owner`: SHA-256(owner bytes ‖ hash bytes). */
export function parcelId(owner: string, sha256: string): string {
  return createHash('sha256')
    .update(Buffer.from(owner, 'hex'))
    .update(Buffer.from(sha256, 'hex'))
    .digest('hex');
}

/** Passes bytes through, hashing them, and fails with 413 once more than `limit` have passed. */
class HashedLimit extends Transform {
  private readonly hash = createHash('sha256');
  private seen = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      done(new SluiceError('ERR_TOO_LARGE', `parcel exceeds ${this.limit} bytes`));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}

/**
 * The parcel API: one-time operation tokens (`POST /api/v1/auth`) and parcels stored, fetched,
 * inspected and removed with them (`/api/v1/parcels`). See docs/API.md, "Parcels".
 */
export async function parcelRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const tokens = new ParcelTokens(ctx.keys, ctx.tokens.issuer);
  const store = await ParcelStore.open(ctx.store.dataDir, ctx.blobs);
  const limiter = new LoginLimiter(PARCEL_AUTH_LIMITS);
  app.addHook('onClose', () => store.flush());
  // The upload body stays unread until the handler has checked the token, then streams to storage.
  app.addContentTypeParser('application/octet-stream', (_request, _payload, done) => done(null));

  const refuse = (request: FastifyRequest, reason: string): SluiceError => {
    request.log.info({ event: 'parcel.refused', reason }, 'parcel request refused');
    return new SluiceError('ERR_UNAUTHORIZED', 'unauthorized');
  };

  /**
   * The checks, in order, each failing with the same 401: the signature over the token by the
   * presented key; the token's `sub` is that key's address; the token is ours, unexpired and
   * unused; it is for this operation and target. Then consumes it (exactly one caller wins).
   */
  const authenticate = async (
    request: FastifyRequest,
    name: ParcelOperationName,
    id?: string,
  ): Promise<ParcelClaims> => {
    const token = request.headers['x-auth-token'];
    if (typeof token !== 'string' || token === '' || token.length > TOKEN_MAX_LENGTH) {
      throw refuse(request, 'token missing');
    }
    const signer = verifyParcelSignature(
      token,
      request.headers['x-public-key'],
      request.headers['x-signature'],
    );
    if (signer === undefined) throw refuse(request, 'signature');
    if (tokens.unverifiedSubject(token) !== signer.address) throw refuse(request, 'subject');
    const claims = await tokens.verify(token);
    if (claims === undefined) throw refuse(request, 'token');
    if (claims.op !== name) throw refuse(request, 'operation');
    if (id !== undefined && claims.id !== id) throw refuse(request, 'target');
    if (!tokens.consume(claims)) throw refuse(request, 'replayed');
    return claims;
  };

  const idOf = ({ id }: { id: string }): string => {
    if (!HEX64.test(id))
      throw new SluiceError('ERR_BAD_REQUEST', 'parcel id must be 64 hex digits');
    return id;
  };

  /** The live record of `id` for its owner, or the 404 / 410 / 403 answer. */
  const ownParcel = (reply: FastifyReply, id: string, owner: string) => {
    const record = store.get(id);
    if (record === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such parcel');
    if (record.removedAt !== null || record.blobId === null) {
      void reply.status(410).send({ error: 'parcel removed', code: 'ERR_GONE' });
      return undefined;
    }
    if (record.owner !== owner)
      throw new SluiceError('ERR_FORBIDDEN', 'not the owner of this parcel');
    return { ...record, blobId: record.blobId };
  };

  app.post<{ Body: { user?: unknown; operation?: unknown } }>(
    '/api/v1/auth',
    {
      config: { operation: 'public' },
      bodyLimit: PARCEL_AUTH_BODY_LIMIT,
      schema: {
        body: {
          type: 'object',
          required: ['user', 'operation'],
          properties: { user: { type: 'string' }, operation: { type: 'object' } },
        },
      },
    },
    async (request) => {
      const { user } = request.body;
      const extra = Object.keys(request.body).filter((k) => k !== 'user' && k !== 'operation');
      if (extra.length > 0) {
        throw new SluiceError('ERR_BAD_REQUEST', `unknown field ${extra[0]?.slice(0, 64)}`);
      }
      if (typeof user !== 'string' || !ADDRESS.test(user)) {
        throw new SluiceError(
          'ERR_BAD_REQUEST',
          'user must be an address: 40 lowercase hex digits',
        );
      }
      const operation = parseOperation(request.body.operation);
      const wait = limiter.admit(request.ip, user);
      if (wait !== undefined) {
        request.log.warn({ event: 'parcel.authRateLimited', retryAfterSeconds: wait }, 'refused');
        throw new SluiceError('ERR_RATE_LIMITED', 'too many token requests; try again later', {
          retryAfterSeconds: wait,
        });
      }
      limiter.failed(user);
      const token = await tokens.issue(user, operation);
      request.log.info({ event: 'parcel.tokenIssued', op: operation.name }, 'parcel token issued');
      return { token };
    },
  );

  app.post('/api/v1/parcels', { config: { operation: 'public' } }, async (request, reply) => {
    let pending: PendingBlob | undefined;
    try {
      const declared = Number(request.headers['content-length']);
      if (Number.isFinite(declared) && declared > ctx.bigPartLimit) {
        throw new SluiceError('ERR_TOO_LARGE', `parcel exceeds ${ctx.bigPartLimit} bytes`);
      }
      const type = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
      if (type !== 'application/octet-stream') {
        throw new SluiceError(
          'ERR_UNSUPPORTED_MEDIA_TYPE',
          'send the parcel as application/octet-stream',
        );
      }
      const claims = await authenticate(request, 'upload');
      const hashed = new HashedLimit(ctx.bigPartLimit);
      pending = await store.receive(request.raw, hashed);
      const sha256 = hashed.digest();
      if (sha256 !== claims.hash) throw refuse(request, 'content hash');
      const id = parcelId(claims.sub, sha256);
      const { existed } = await store.add(id, claims.sub, sha256, pending);
      request.log.info({ event: 'parcel.stored', id, existed, size: pending.size }, 'parcel');
      return reply.status(existed ? 200 : 201).send({ id });
    } catch (e) {
      // Drain what the client still sends so that it gets to read the answer.
      request.raw.resume();
      throw e;
    } finally {
      await pending?.discard();
    }
  });

  app.get<{ Params: { id: string }; Querystring: { key?: unknown } }>(
    '/api/v1/parcels/:id',
    { config: { operation: 'public' } },
    async (request, reply) => {
      const id = idOf(request.params);
      const { key } = request.query;
      if (key !== undefined) {
        if (key !== 'metadata' && key !== 'owner') {
          throw new SluiceError('ERR_BAD_REQUEST', 'key must be metadata or owner');
        }
        const record = store.get(id);
        if (record === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such parcel');
        if (record.removedAt !== null) {
          return reply.status(410).send({ error: 'parcel removed', code: 'ERR_GONE' });
        }
        if (key === 'owner') return { owner: record.owner };
        return { id, size: record.size, sha256: record.sha256, createdAt: record.createdAt };
      }
      const claims = await authenticate(request, 'download', id);
      const record = ownParcel(reply, id, claims.sub);
      if (record === undefined) return reply;
      const body = await store.openRead(record.blobId);
      request.log.info({ event: 'parcel.read', id }, 'parcel read');
      reply.type('application/octet-stream');
      reply.header('content-length', String(record.size));
      reply.header('cache-control', 'private, no-store');
      return reply.status(200).send(body);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/parcels/:id',
    { config: { operation: 'public' } },
    async (request, reply) => {
      const id = idOf(request.params);
      const claims = await authenticate(request, 'remove', id);
      if (ownParcel(reply, id, claims.sub) === undefined) return reply;
      const removed = await store.remove(id);
      if (removed === undefined) {
        // Removed by a concurrent request (with another token) since the check above.
        return reply.status(410).send({ error: 'parcel removed', code: 'ERR_GONE' });
      }
      if (removed.bytesLeft !== undefined) {
        request.log.warn(
          { event: 'parcel.bytesLeft', id, err: removed.bytesLeft },
          'removed parcel bytes not deleted',
        );
      }
      request.log.info({ event: 'parcel.removed', id }, 'parcel removed');
      return reply.status(204).send();
    },
  );
}

/** `{name: 'upload', hash}` or `{name: 'download' | 'remove' | 'inspect', id}`, nothing else. */
function parseOperation(value: unknown): ParcelOperation {
  const op = value as Record<string, unknown> | null;
  const keys = typeof op === 'object' && op !== null ? Object.keys(op).sort().join(',') : '';
  if (op?.name === 'upload') {
    if (keys === 'hash,name' && typeof op.hash === 'string' && HEX64.test(op.hash)) {
      return { name: 'upload', hash: op.hash };
    }
    throw new SluiceError(
      'ERR_BAD_REQUEST',
      'upload needs hash: the SHA-256 of the content, 64 lowercase hex digits',
    );
  }
  if (op?.name === 'download' || op?.name === 'remove' || op?.name === 'inspect') {
    if (keys === 'id,name' && typeof op.id === 'string' && HEX64.test(op.id)) {
      return { name: op.name, id: op.id };
    }
    throw new SluiceError(
      'ERR_BAD_REQUEST',
      `${op.name} needs id: a parcel id, 64 lowercase hex digits`,
    );
  }
  throw new SluiceError(
    'ERR_BAD_REQUEST',
    'operation.name must be upload, download, remove or inspect',
  );
}
