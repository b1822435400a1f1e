import { randomUUID } from 'node:crypto';
import type { ParcelOperationName, ParcelTokenRequest } from '@sluice/protocol';
import { decodeJwt, jwtVerify, SignJWT } from 'jose';
import type { SigningKeys } from '../auth/keys.js';
import type { Store } from '../stores/store.js';

/** `aud` of parcel tokens: never the access tokens' audience, so neither passes as the other. */
export const PARCEL_TOKEN_AUDIENCE = 'sluice-parcels';
/** `typ` header of parcel tokens (access tokens are `at+jwt`). */
export const PARCEL_TOKEN_TYPE = 'parcel+jwt';
/** Lifetime of a parcel token in seconds. */
export const PARCEL_TOKEN_TTL_SECONDS = 60;
/** Used `jti`s are remembered this long past their token's `exp`. */
const USED_MARGIN_SECONDS = 5;

/** What a token is for: uploading content with this SHA-256, or acting on one parcel id. */
export type ParcelOperation = ParcelTokenRequest['operation'];

/** The claims of a verified parcel token. */
export interface ParcelClaims {
  iss: string;
  aud: string;
  /** The address of the key that may use the token. */
  sub: string;
  jti: string;
  iat: number;
  exp: number;
  op: ParcelOperationName;
  id?: string;
  hash?: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * One-time parcel tokens: EdDSA JWTs under the server's signing key, each good for one operation
 * on one target within PARCEL_TOKEN_TTL_SECONDS, and consumed at most once. Used `jti`s are kept
 * in the store (`used_parcel_tokens`, written before the operation proceeds) until their
 * token expires, so a restart does not make a used token good again (docs/API.md).
 */
export class ParcelTokens {
  private readonly keys: SigningKeys;
  private readonly issuer: string;
  private readonly store: Store;

  constructor(keys: SigningKeys, issuer: string, store: Store) {
    this.keys = keys;
    this.issuer = issuer;
    this.store = store;
  }

  /** Signs a token for `user` (an address) and `operation`. */
  issue(user: string, operation: ParcelOperation): Promise<string> {
    const target = operation.name === 'upload' ? { hash: operation.hash } : { id: operation.id };
    return new SignJWT({ op: operation.name, ...target })
      .setProtectedHeader({ alg: this.keys.alg, kid: this.keys.kid, typ: PARCEL_TOKEN_TYPE })
      .setIssuer(this.issuer)
      .setAudience(PARCEL_TOKEN_AUDIENCE)
      .setSubject(user)
      .setJti(randomUUID())
      .setIssuedAt()
      .setExpirationTime(`${PARCEL_TOKEN_TTL_SECONDS}s`)
      .sign(this.keys.privateKey);
  }

  /** The `sub` claim without any verification (to compare with the signer before verifying). */
  unverifiedSubject(token: string): string | undefined {
    try {
      const sub = decodeJwt(token).sub;
      return typeof sub === 'string' ? sub : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Verifies signature (EdDSA, our key), `typ`, issuer, audience, `iat` not in the future, `exp`
   * not passed and at most PARCEL_TOKEN_TTL_SECONDS after `iat`, the operation's shape, and that
   * the token has not been used. Undefined on any failure.
   */
  async verify(token: string, now = Date.now()): Promise<ParcelClaims | undefined> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.keys.publicKey, {
        algorithms: [this.keys.alg],
        issuer: this.issuer,
        audience: PARCEL_TOKEN_AUDIENCE,
        typ: PARCEL_TOKEN_TYPE,
        maxTokenAge: PARCEL_TOKEN_TTL_SECONDS,
        currentDate: new Date(now),
        requiredClaims: ['sub', 'jti', 'iat', 'exp', 'op'],
      }));
    } catch {
      return undefined;
    }
    const { sub, jti, iat, exp, op, id, hash } = payload;
    if (typeof sub !== 'string' || typeof jti !== 'string' || jti === '') return undefined;
    if (typeof iat !== 'number' || typeof exp !== 'number') return undefined;
    if (exp - iat > PARCEL_TOKEN_TTL_SECONDS) return undefined;
    const target =
      op === 'upload'
        ? typeof hash === 'string' && HEX64.test(hash)
        : (op === 'download' || op === 'remove' || op === 'inspect') &&
          typeof id === 'string' &&
          HEX64.test(id);
    if (!target) return undefined;
    if (await this.store.parcels.tokenUsed(jti)) return undefined;
    return payload as unknown as ParcelClaims;
  }

  /**
   * Marks the token used, durably: true for the one caller that gets it first, false for every
   * other, on any instance (one INSERT … ON CONFLICT DO NOTHING, committed before this resolves),
   * so neither concurrent requests nor a restart can use it twice. Ids of expired tokens are
   * forgotten on the way.
   */
  async consume(claims: ParcelClaims, now = Date.now()): Promise<boolean> {
    // An indexed range that is empty nearly always: cheap enough to run on every use.
    await this.store.parcels.forgetTokens(now / 1000);
    return this.store.parcels.consumeToken(claims.jti, claims.exp + USED_MARGIN_SECONDS);
  }

  /** How many used tokens are remembered (expired ones are forgotten as new ones are used). */
  usedCount(): Promise<number> {
    return this.store.parcels.usedTokenCount();
  }
}
