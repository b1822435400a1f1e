import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { isRole, type Role, SluiceError, type TokenResponse } from '@sluice/protocol';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { RefreshFamily, UserRecord } from '../stores/records.js';
import type { Store, Tables } from '../stores/store.js';
import type { SigningKeys } from './keys.js';

export const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 15 * 60;
export const DEFAULT_REFRESH_TOKEN_TTL_SECONDS = 30 * 24 * 60 * 60;
/** How far a client's clock may be ahead of ours before its tokens' `iat` is refused. */
export const CLOCK_SKEW_SECONDS = 60;
/** `typ` header of access tokens (RFC 9068), so no other JWT we sign can pass as one. */
export const ACCESS_TOKEN_TYPE = 'at+jwt';
/**
 * Rotated-out refresh tokens remembered per family for reuse detection (two hours of 15-minute
 * refreshes), each as the first 128 bits of its SHA-256: the metadata file is rewritten on every
 * refresh, so families must stay small.
 */
export const PREVIOUS_HASHES_KEPT = 8;
/** Logins kept per user; the oldest families beyond this are dropped (their tokens stop working). */
export const MAX_FAMILIES_PER_USER = 50;

export interface TokenOptions {
  issuer: string;
  audience: string;
  accessTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
}

/** The claims of a verified access token. */
export interface AccessClaims {
  nameid: string;
  unique_name: string;
  role: Role;
  jti: string;
  iat: number;
  exp: number;
  iss: string;
  aud: string | string[];
}

/**
 * Issues and checks tokens. Access tokens are EdDSA JWTs verified statelessly; refresh tokens are
 * opaque `<familyId>.<secret>` strings of which only the SHA-256 is stored. Each refresh rotates
 * the token; presenting a rotated-out one revokes the whole family (the token was copied).
 */
export class TokenService {
  readonly issuer: string;
  readonly audience: string;
  readonly accessTokenTtlSeconds: number;
  readonly refreshTokenTtlSeconds: number;
  private readonly store: Store;
  private readonly keys: SigningKeys;

  constructor(store: Store, keys: SigningKeys, options: TokenOptions) {
    this.store = store;
    this.keys = keys;
    this.issuer = options.issuer;
    this.audience = options.audience;
    this.accessTokenTtlSeconds = options.accessTokenTtlSeconds ?? DEFAULT_ACCESS_TOKEN_TTL_SECONDS;
    this.refreshTokenTtlSeconds =
      options.refreshTokenTtlSeconds ?? DEFAULT_REFRESH_TOKEN_TTL_SECONDS;
    for (const [name, v] of [
      ['accessTokenTtlSeconds', this.accessTokenTtlSeconds],
      ['refreshTokenTtlSeconds', this.refreshTokenTtlSeconds],
    ] as const) {
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer`);
    }
  }

  /**
   * Signs an access token for `user` with the claims the clients expect. Its `iat` is never
   * before the user's cut-off (see `firstValidIat`), so a token issued in the same second as a
   * password change or a disable is not mistaken for one issued before it.
   */
  async issueAccessToken(user: UserRecord): Promise<string> {
    const iat = Math.max(Math.floor(Date.now() / 1000), firstValidIat(user));
    return new SignJWT({ nameid: user.id, unique_name: user.email, role: user.role })
      .setProtectedHeader({ alg: this.keys.alg, kid: this.keys.kid, typ: ACCESS_TOKEN_TYPE })
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.accessTokenTtlSeconds)
      .setJti(randomUUID())
      .sign(this.keys.privateKey);
  }

  /**
   * Verifies signature (EdDSA with our key only), `typ`, issuer, audience, and the times against
   * this server's own clock: `exp` exactly (the server signed it, so no skew applies), an `iat` no
   * more than CLOCK_SKEW_SECONDS in the future (another instance's clock may run ahead) and no
   * older than the token lifetime. Throws SluiceError ERR_UNAUTHORIZED.
   */
  async verifyAccessToken(token: string, now = Date.now()): Promise<AccessClaims> {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, this.keys.publicKey, {
        algorithms: [this.keys.alg],
        issuer: this.issuer,
        audience: this.audience,
        typ: ACCESS_TOKEN_TYPE,
        currentDate: new Date(now),
        requiredClaims: ['exp', 'iat', 'jti', 'nameid', 'unique_name', 'role'],
      }));
    } catch (e) {
      const expired = e instanceof joseErrors.JWTExpired;
      throw new SluiceError(
        'ERR_UNAUTHORIZED',
        expired ? 'access token expired' : 'invalid access token',
        { cause: e },
      );
    }
    const { nameid, unique_name, role, iat } = payload;
    if (typeof nameid !== 'string' || typeof unique_name !== 'string' || !isRole(role)) {
      throw new SluiceError('ERR_UNAUTHORIZED', 'invalid access token');
    }
    // jose validated `iat` as a number; its own age check would apply one tolerance to both ends.
    const age = Math.floor(now / 1000) - (iat as number);
    if (age < -CLOCK_SKEW_SECONDS) {
      throw new SluiceError('ERR_UNAUTHORIZED', 'invalid access token: issued in the future');
    }
    if (age > this.accessTokenTtlSeconds) {
      throw new SluiceError('ERR_UNAUTHORIZED', 'access token expired');
    }
    return payload as unknown as AccessClaims;
  }

  /** Starts a refresh family for `user` (a login) and returns both tokens. */
  async startSession(user: UserRecord): Promise<TokenResponse> {
    const familyId = randomBytes(16).toString('base64url');
    const refreshToken = newRefreshToken(familyId);
    const now = new Date();
    const expiresAt = new Date(now.getTime() + this.refreshTokenTtlSeconds * 1000).toISOString();
    await this.store.transaction(async (t) => {
      await pruneFamilies(t, now, user.id);
      await t.families.insert({
        id: familyId,
        userId: user.id,
        currentHash: hashToken(refreshToken),
        previousHashes: [],
        createdAt: now.toISOString(),
        rotatedAt: now.toISOString(),
        expiresAt,
        revokedAt: null,
        revokedReason: null,
      });
    });
    return this.bundle(user, refreshToken, expiresAt);
  }

  /**
   * Exchanges a refresh token for a new pair. A rotated-out token revokes its family; a revoked,
   * expired or unknown token, or a disabled or deleted user, gives ERR_UNAUTHORIZED.
   */
  async refresh(refreshToken: string): Promise<TokenResponse> {
    const familyId = familyIdOf(refreshToken);
    const presented = hashToken(refreshToken);
    const next = newRefreshToken(familyId ?? '');
    const now = new Date();
    // The decision and the rotation happen inside one serializable transaction, so two
    // concurrent refreshes with the same token (on any instances) cannot both succeed.
    const outcome = await this.store.transaction(async (t) => {
      const family = familyId === undefined ? undefined : await t.families.get(familyId);
      if (family === undefined) throw invalidRefresh();
      if (family.revokedAt !== null) throw invalidRefresh('refresh token revoked');
      if (Date.parse(family.expiresAt) <= now.getTime()) {
        throw invalidRefresh('refresh token expired');
      }
      if (family.currentHash !== presented) {
        if (!family.previousHashes.includes(shortHash(presented))) throw invalidRefresh();
        family.revokedAt = now.toISOString();
        family.revokedReason = 'reuse';
        await t.families.update(family);
        return { kind: 'reused' as const };
      }
      const user = await t.users.get(family.userId);
      if (user === undefined || user.disabled || startedBeforeCutOff(family, user)) {
        family.revokedAt = now.toISOString();
        family.revokedReason = user?.disabled === false ? 'sessions cut off' : 'user disabled';
        await t.families.update(family);
        return { kind: 'disabled' as const };
      }
      family.previousHashes = [...family.previousHashes, shortHash(family.currentHash)].slice(
        -PREVIOUS_HASHES_KEPT,
      );
      family.currentHash = hashToken(next);
      family.rotatedAt = now.toISOString();
      await t.families.update(family);
      return { kind: 'rotated' as const, user: { ...user }, expiresAt: family.expiresAt };
    });
    if (outcome.kind === 'reused') {
      throw invalidRefresh('refresh token reused; every session of this login has been revoked');
    }
    if (outcome.kind === 'disabled') throw invalidRefresh();
    return this.bundle(outcome.user, next, outcome.expiresAt);
  }

  /** Revokes the family of `refreshToken` (logout). False when the token is not current. */
  async revoke(refreshToken: string, reason = 'logout'): Promise<boolean> {
    const familyId = familyIdOf(refreshToken);
    const presented = hashToken(refreshToken);
    if (familyId === undefined) return false;
    return this.store.transaction(async (t) => {
      const f = await t.families.get(familyId);
      if (f === undefined || f.revokedAt !== null || f.currentHash !== presented) return false;
      f.revokedAt = new Date().toISOString();
      f.revokedReason = reason;
      await t.families.update(f);
      return true;
    });
  }

  /** What a login or a refresh answers: a new access token with the refresh token. */
  private async bundle(user: UserRecord, refreshToken: string, refreshExpiresAt: string) {
    const accessToken = await this.issueAccessToken(user);
    const expiresIn = this.accessTokenTtlSeconds;
    const answer: TokenResponse = {
      accessToken,
      tokenType: 'Bearer',
      expiresIn,
      refreshToken,
      refreshExpiresAt,
    };
    return answer;
  }
}

/**
 * The first `iat` an access token of `user` may carry: the second after its cut-off
 * (`tokensValidAfter`), or 0 when it never had one. Tokens issued before are refused.
 */
export function firstValidIat(user: Pick<UserRecord, 'tokensValidAfter'>): number {
  if (user.tokensValidAfter === undefined) return 0;
  return Math.floor(Date.parse(user.tokensValidAfter) / 1000) + 1;
}

/** Whether `family` (a login) started before the cut-off of its user. */
function startedBeforeCutOff(family: RefreshFamily, user: UserRecord): boolean {
  const cut = user.tokensValidAfter;
  return cut !== undefined && Date.parse(family.createdAt) < Date.parse(cut);
}

/**
 * Ends every session of `user` inside a store mutation (disable, role change, device reset,
 * password change): its refresh families are revoked and every access token issued until now is
 * refused from the next request on, whatever happens to the account afterwards (re-enabling it
 * revives nothing).
 */
export async function cutOffSessions(t: Tables, user: UserRecord, reason: string): Promise<void> {
  const now = new Date().toISOString();
  user.tokensValidAfter = now;
  await t.families.revokeAllOf(user.id, now, reason);
}

/**
 * Drops the families of `userId` past their absolute expiry (their tokens are refused by expiry
 * anyway) and, as the user is about to get one more, the oldest beyond MAX_FAMILIES_PER_USER - 1.
 * Expired families of other users are the sweeper's job.
 */
async function pruneFamilies(t: Tables, now: Date, userId: string): Promise<void> {
  await t.families.removeExpired(userId, now.toISOString());
  const mine = await t.families.ofUser(userId);
  for (const f of mine.slice(0, Math.max(0, mine.length - (MAX_FAMILIES_PER_USER - 1)))) {
    await t.families.remove(f.id);
  }
}

function shortHash(hexHash: string): string {
  return hexHash.slice(0, 32);
}

function newRefreshToken(familyId: string): string {
  return `${familyId}.${randomBytes(32).toString('base64url')}`;
}

/** Refresh tokens carry 256 random bits, so a fast hash is enough to store them safely. */
function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function familyIdOf(token: string): string | undefined {
  const m = /^([A-Za-z0-9_-]{22})\.[A-Za-z0-9_-]{43}$/.exec(token);
  return m?.[1];
}

function invalidRefresh(message = 'invalid refresh token'): SluiceError {
  return new SluiceError('ERR_UNAUTHORIZED', message);
}
