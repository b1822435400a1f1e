import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  type ParcelMetadataResponse,
  type ParcelOperationName,
  type ParcelOwnerResponse,
  SluiceError,
} from '@sluice/protocol';
import type { FastifyBaseLogger } from 'fastify';
import type { Entries } from '../auth/backoffCounter.js';
import type { SigningKeys } from '../auth/keys.js';
import { type LimitRule, WindowCounter } from '../auth/windowCounter.js';
import type { PartStorage, PendingBlob } from '../stores/partStorage.js';
import type { Store } from '../stores/store.js';
import { HashedLimit } from './hashedLimit.js';
import { verifyParcelSignature } from './parcelSignature.js';
import { type ParcelRecord, ParcelStore } from './parcelStore.js';
import { type ParcelClaims, type ParcelOperation, ParcelTokens } from './parcelTokens.js';

/** `POST /api/v1/auth` limits: token requests per client address, and tokens issued per user. */
export const PARCEL_AUTH_LIMITS: Readonly<{ perAddress: LimitRule; perUser: LimitRule }> = {
  perAddress: { limit: 120, windowSeconds: 60 },
  perUser: { limit: 60, windowSeconds: 60 },
};

/** The parcel id of content `sha256` uploaded by `owner`: SHA-256(owner bytes ‖ hash bytes). */
export function parcelId(owner: string, sha256: string): string {
  return createHash('sha256')
    .update(Buffer.from(owner, 'hex'))
    .update(Buffer.from(sha256, 'hex'))
    .digest('hex');
}

export interface ParcelServiceDeps {
  keys: SigningKeys;
  /** Where used token ids are kept (across restarts). */
  store: Store;
  /** `iss` of the server's tokens, which parcel tokens carry too. */
  issuer: string;
  dataDir: string;
  /** The server's part storage: parcels go into it when it is S3. */
  partStorage: PartStorage;
  /** Largest parcel accepted, in bytes. */
  sizeLimit: number;
}

/** A signed parcel request: `X-Auth-Token`, `X-Public-Key`, `X-Signature` as they came. */
export interface SignedRequest {
  token: unknown;
  publicKey: unknown;
  signature: unknown;
  log: FastifyBaseLogger;
}

/** A parcel that is live, or `'gone'` (410) once removed. */
export type Live<T> = T | 'gone';

/** Longest `X-Auth-Token` looked at (ours are about 400 characters). */
const TOKEN_MAX_LENGTH = 4096;

/**
 * Parcels for machine clients holding a P-256 key: one-time operation tokens, and parcels
 * stored, fetched, inspected and removed with them. See docs/API.md, "Parcels".
 */
export class ParcelService {
  private readonly tokens: ParcelTokens;
  private readonly perAddress = new WindowCounter(PARCEL_AUTH_LIMITS.perAddress, 'a:');
  private readonly perUser = new WindowCounter(PARCEL_AUTH_LIMITS.perUser, 'u:');
  /** The windows of both, in this process (token issuing is cheap; logins are what is shared). */
  private readonly windows: Entries = new Map();

  private constructor(
    private readonly store: ParcelStore,
    private readonly deps: ParcelServiceDeps,
  ) {
    this.tokens = new ParcelTokens(deps.keys, deps.issuer, deps.store);
  }

  static async open(deps: ParcelServiceDeps): Promise<ParcelService> {
    return new ParcelService(
      await ParcelStore.open(deps.store, deps.dataDir, deps.partStorage),
      deps,
    );
  }

  /** A one-time token for `user` (an address) and `operation`, within the issue limits. */
  async issueToken(
    address: string,
    user: string,
    operation: ParcelOperation,
    log: FastifyBaseLogger,
  ): Promise<string> {
    const now = Date.now();
    const m = this.windows;
    const wait = Math.max(this.perAddress.wait(m, address, now), this.perUser.wait(m, user, now));
    if (wait > 0) {
      log.warn({ event: 'parcel.authRateLimited', retryAfterSeconds: wait }, 'refused');
      throw new SluiceError('ERR_RATE_LIMITED', 'too many token requests; try again later', {
        retryAfterSeconds: wait,
      });
    }
    this.perAddress.add(m, address, now);
    this.perUser.add(m, user, now);
    const token = await this.tokens.issue(user, operation);
    log.info({ event: 'parcel.tokenIssued', op: operation.name }, 'parcel token issued');
    return token;
  }

  /**
   * Stores the body of a signed upload request; `existed` when this owner already had it.
   * The token is checked before a byte of the body is read.
   */
  async put(signed: SignedRequest, body: Readable): Promise<{ id: string; existed: boolean }> {
    const claims = await this.authenticate(signed, 'upload');
    const hashed = new HashedLimit(this.deps.sizeLimit);
    let pending: PendingBlob | undefined;
    try {
      pending = await this.store.receive(body, hashed);
      const sha256 = hashed.digest();
      if (sha256 !== claims.hash) throw refuse(signed.log, 'content hash');
      const id = parcelId(claims.sub, sha256);
      const { existed } = await this.store.add(id, claims.sub, sha256, pending);
      signed.log.info({ event: 'parcel.stored', id, existed, size: pending.size }, 'parcel');
      return { id, existed };
    } finally {
      await pending?.discard();
    }
  }

  /** What anyone may know of a parcel: its metadata or its owner. */
  async inspect(
    id: string,
    key: 'metadata' | 'owner',
  ): Promise<Live<ParcelMetadataResponse | ParcelOwnerResponse>> {
    const record = await this.store.get(id);
    if (record === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such parcel');
    if (record.removedAt !== null) return 'gone';
    if (key === 'owner') return { owner: record.owner };
    return { id, size: record.size, sha256: record.sha256, createdAt: record.createdAt };
  }

  /** The bytes of a parcel, for its owner's signed download request. */
  async read(signed: SignedRequest, id: string): Promise<Live<{ size: number; body: Readable }>> {
    const claims = await this.authenticate(signed, 'download', id);
    const record = await this.ownParcel(id, claims.sub);
    if (record === 'gone') return 'gone';
    const body = await this.store.openRead(record.blobId);
    signed.log.info({ event: 'parcel.read', id }, 'parcel read');
    return { size: record.size, body };
  }

  /** Removes a parcel for its owner's signed request: a tombstone stays (410 afterwards). */
  async remove(signed: SignedRequest, id: string): Promise<Live<'removed'>> {
    const { log } = signed;
    const claims = await this.authenticate(signed, 'remove', id);
    if ((await this.ownParcel(id, claims.sub)) === 'gone') return 'gone';
    const removed = await this.store.remove(id);
    // Removed by a concurrent request (with another token) since the check above.
    if (removed === undefined) return 'gone';
    if (removed.bytesLeft !== undefined) {
      log.warn(
        { event: 'parcel.bytesLeft', id, err: removed.bytesLeft },
        'removed parcel bytes not deleted',
      );
    }
    log.info({ event: 'parcel.removed', id }, 'parcel removed');
    return 'removed';
  }

  /**
   * The checks, in order, each failing with the same 401: the signature over the token by the
   * presented key; the token's `sub` is that key's address; the token is ours, unexpired and
   * unused; it is for this operation and target. Then consumes it (exactly one caller wins).
   */
  private async authenticate(
    signed: SignedRequest,
    name: ParcelOperationName,
    id?: string,
  ): Promise<ParcelClaims> {
    const { token, log } = signed;
    if (typeof token !== 'string' || token === '' || token.length > TOKEN_MAX_LENGTH) {
      throw refuse(log, 'token missing');
    }
    const signer = verifyParcelSignature(token, signed.publicKey, signed.signature);
    if (signer === undefined) throw refuse(log, 'signature');
    if (this.tokens.unverifiedSubject(token) !== signer.address) throw refuse(log, 'subject');
    const claims = await this.tokens.verify(token);
    if (claims === undefined) throw refuse(log, 'token');
    if (claims.op !== name) throw refuse(log, 'operation');
    if (id !== undefined && claims.id !== id) throw refuse(log, 'target');
    if (!(await this.tokens.consume(claims))) throw refuse(log, 'replayed');
    return claims;
  }

  /** The live record of `id` for its owner, `'gone'`, or the 404 / 403 error. */
  private async ownParcel(
    id: string,
    owner: string,
  ): Promise<Live<ParcelRecord & { blobId: string }>> {
    const record = await this.store.get(id);
    if (record === undefined) throw new SluiceError('ERR_NOT_FOUND', 'no such parcel');
    if (record.removedAt !== null || record.blobId === null) return 'gone';
    if (record.owner !== owner) {
      throw new SluiceError('ERR_FORBIDDEN', 'not the owner of this parcel');
    }
    return { ...record, blobId: record.blobId };
  }
}

function refuse(log: FastifyBaseLogger, reason: string): SluiceError {
  log.info({ event: 'parcel.refused', reason }, 'parcel request refused');
  return new SluiceError('ERR_UNAUTHORIZED', 'unauthorized');
}
