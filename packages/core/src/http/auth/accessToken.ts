import { createPublicKey, type JsonWebKey, type KeyObject, verify } from 'node:crypto';
import { SluiceError } from '@sluice/protocol';

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

/** The parts of a compact JWS, decoded but not yet trusted. */
export interface DecodedToken {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
  signingInput: Buffer;
  signature: Buffer;
}

/** Splits and decodes a compact JWS; throws ERR_TOKEN_INVALID when it is not one. */
export function decodeToken(token: string): DecodedToken {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) {
    throw invalid('the access token is not a compact JWT');
  }
  const [h, p, s] = parts as [string, string, string];
  return {
    header: jsonPart(h, 'header'),
    payload: jsonPart(p, 'payload'),
    signingInput: Buffer.from(`${h}.${p}`, 'ascii'),
    signature: Buffer.from(s, 'base64url'),
  };
}

/**
 * Checks the signature with the JWKS key named by `kid`, then `typ`, `iss`, `aud`, `exp` and the
 * claims a session needs. Throws ERR_TOKEN_INVALID; the message never quotes the token.
 */
export function verifyDecoded(
  token: DecodedToken,
  key: { key: KeyObject; alg: string },
  expect: VerifyExpectations,
): AccessClaims {
  const { header, payload } = token;
  if (header.alg !== key.alg) {
    throw invalid(`the access token's algorithm ${String(header.alg)} is not its key's`);
  }
  if (header.typ !== 'at+jwt' && header.typ !== 'application/at+jwt') {
    throw invalid('the token is not an access token (typ)');
  }
  const ok =
    key.alg === 'EdDSA'
      ? verify(null, token.signingInput, key.key, token.signature)
      : verify(
          'sha256',
          token.signingInput,
          { key: key.key, dsaEncoding: 'ieee-p1363' },
          token.signature,
        );
  if (!ok) throw invalid('the access token signature does not verify against the server key');
  if (payload.iss !== expect.issuer) throw invalid('the access token has the wrong issuer');
  const aud = payload.aud;
  const audiences = Array.isArray(aud) ? aud : [aud];
  if (!audiences.includes(expect.audience)) {
    throw invalid('the access token is not meant for this API (aud)');
  }
  const { exp, iat, nameid, unique_name, role, jti } = payload;
  if (typeof exp !== 'number' || typeof iat !== 'number' || exp <= iat) {
    throw invalid('the access token has no valid exp/iat');
  }
  const now = (expect.now ?? Date.now()) / 1000;
  if (exp <= now - expect.clockToleranceSeconds) {
    throw invalid('the access token has expired (or this machine clock is ahead)');
  }
  if (typeof payload.nbf === 'number' && payload.nbf > now + expect.clockToleranceSeconds) {
    throw invalid('the access token is not valid yet (or this machine clock is behind)');
  }
  if (typeof nameid !== 'string' || typeof unique_name !== 'string' || typeof role !== 'string') {
    throw invalid('the access token lacks nameid, unique_name or role');
  }
  if (typeof jti !== 'string') throw invalid('the access token lacks jti');
  return { id: nameid, email: unique_name, role, exp, iat, jti };
}

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

function jsonPart(part: string, what: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // reported below
  }
  throw invalid(`the access token ${what} is not a JSON object`);
}

function invalid(message: string): SluiceError {
  return new SluiceError('ERR_TOKEN_INVALID', message);
}
