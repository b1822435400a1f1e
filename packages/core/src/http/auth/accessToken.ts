import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { SluiceError } from '@sluice/protocol';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';

/** The claims of a sluice access token that a client relies on. */
export interface AccessClaims {
  /** `nameid`: the user id. */
  id: string;
  /** `unique_name`: the email. */
  email: string;
  role: string;
  /** Expiry, seconds since the epoch (server clock). */
  exp: number;
  /** Issued at, seconds since the epoch (server clock). */
  iat: number;
  jti: string;
}

export interface VerifyExpectations {
  issuer: string;
  audience: string;
  /** Seconds the local clock may be behind or ahead of the server's. */
  clockToleranceSeconds: number;
  /** Local time in ms (tests of other code may pass their own clock). */
  now?: number;
}

/** Public keys by `kid`, built from a JWKS document. Keys of unknown type are skipped. */
export function importJwks(jwks: unknown): Map<string, { key: KeyObject; alg: string }> {
  const keys = new Map<string, { key: KeyObject; alg: string }>();
  const list = (jwks as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list)) throw invalid('the JWKS document has no `keys` array');
  for (const jwk of list as Array<Record<string, unknown>>) {
    if (typeof jwk !== 'object' || jwk === null || typeof jwk.kid !== 'string') continue;
    if (jwk.use !== undefined && jwk.use !== 'sig') continue;
    const alg = algOf(jwk);
    if (alg === undefined || 'd' in jwk) continue;
    try {
      keys.set(jwk.kid, {
        key: createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }),
        alg,
      });
    } catch {
      // A malformed key cannot verify anything; tokens naming it fail as "unknown key".
    }
  }
  return keys;
}

/** A compact JWS with its header and payload decoded but not yet trusted. */
export interface DecodedToken {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  /** The token itself, for jose to verify. */
  compact: string;
}

/** Splits and decodes a compact JWS (through jose); throws ERR_TOKEN_INVALID when it is not one. */
export function decodeToken(token: string): DecodedToken {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) {
    throw invalid('the access token is not a compact JWT');
  }
  return {
    header: decoded(() => decodeProtectedHeader(token), 'header'),
    payload: decoded(() => decodeJwt(token), 'payload'),
    compact: token,
  };
}

/**
 * Checks, through jose's `jwtVerify`, the signature with the JWKS key named by `kid`, the
 * algorithm, `typ`, `crit` (no extension is understood), `iss`, `aud`, `exp` and `nbf` (with the
 * clock tolerance); then `exp` after `iat` and the claims a session needs. Throws
 * ERR_TOKEN_INVALID; the message never quotes the token.
 */
export async function verifyDecoded(
  token: DecodedToken,
  key: { key: KeyObject; alg: string },
  expect: VerifyExpectations,
): Promise<AccessClaims> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token.compact, key.key, {
      algorithms: [key.alg],
      typ: 'at+jwt',
      issuer: expect.issuer,
      audience: expect.audience,
      clockTolerance: expect.clockToleranceSeconds,
      currentDate: new Date(expect.now ?? Date.now()),
      requiredClaims: ['exp', 'iat'],
    }));
  } catch (e) {
    throw refusal(e, token.header);
  }
  const { exp, iat, nameid, unique_name, role, jti } = payload;
  if (typeof exp !== 'number' || typeof iat !== 'number' || exp <= iat) {
    throw invalid('the access token has no valid exp/iat');
  }
  if (typeof nameid !== 'string' || typeof unique_name !== 'string' || typeof role !== 'string') {
    throw invalid('the access token lacks nameid, unique_name or role');
  }
  if (typeof jti !== 'string') throw invalid('the access token lacks jti');
  return { id: nameid, email: unique_name, role, exp, iat, jti };
}

/** jose's refusal as ERR_TOKEN_INVALID with the message the client has always given. */
function refusal(e: unknown, header: Record<string, unknown>): SluiceError {
  const { code, claim } = e as { code?: string; claim?: string };
  let message = 'the access token does not verify';
  if (
    header.crit !== undefined &&
    (code === 'ERR_JOSE_NOT_SUPPORTED' || code === 'ERR_JWS_INVALID')
  ) {
    // jose understands no extension here: any `crit` entry (or a malformed `crit`) is refused.
    message = 'the access token names critical header parameters (crit) this client does not know';
  } else if (
    code === 'ERR_JOSE_ALG_NOT_ALLOWED' ||
    (code === 'ERR_JWS_INVALID' && typeof header.alg !== 'string')
  ) {
    message = `the access token's algorithm ${String(header.alg)} is not its key's`;
  } else if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') {
    message = 'the access token signature does not verify against the server key';
  } else if (code === 'ERR_JWT_EXPIRED') {
    message = 'the access token has expired (or this machine clock is ahead)';
  } else if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    message = CLAIM_MESSAGES[claim ?? ''] ?? message;
  }
  return new SluiceError('ERR_TOKEN_INVALID', message, { cause: e });
}

/** What a failed claim check of jose means for the user. */
const CLAIM_MESSAGES: Record<string, string> = {
  typ: 'the token is not an access token (typ)',
  iss: 'the access token has the wrong issuer',
  aud: 'the access token is not meant for this API (aud)',
  exp: 'the access token has no valid exp/iat',
  iat: 'the access token has no valid exp/iat',
  nbf: 'the access token is not valid yet (or this machine clock is behind)',
};

/** Claims read without any check, for `verifyTokens: false`. */
export function unverifiedClaims(token: string): AccessClaims {
  const { payload } = decodeToken(token);
  const { exp, iat, nameid, unique_name, role, jti } = payload;
  if (typeof exp !== 'number') throw invalid('the access token has no exp');
  return {
    id: String(nameid ?? ''),
    email: String(unique_name ?? ''),
    role: String(role ?? ''),
    exp,
    iat: typeof iat === 'number' ? iat : exp,
    jti: String(jti ?? ''),
  };
}

function algOf(jwk: Record<string, unknown>): string | undefined {
  let alg: string | undefined;
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') alg = 'EdDSA';
  else if (jwk.kty === 'EC' && jwk.crv === 'P-256') alg = 'ES256';
  if (alg === undefined || (jwk.alg !== undefined && jwk.alg !== alg)) return undefined;
  return alg;
}

/** A part jose decodes, or ERR_TOKEN_INVALID naming it. */
function decoded(decode: () => object, what: string): Record<string, unknown> {
  try {
    return decode() as Record<string, unknown>;
  } catch {
    throw invalid(`the access token ${what} is not a JSON object`);
  }
}

function invalid(message: string): SluiceError {
  return new SluiceError('ERR_TOKEN_INVALID', message);
}
