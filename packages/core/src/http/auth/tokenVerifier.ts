import type { JwksResponse } from '@sluice/protocol';
import { SluiceError } from '@sluice/protocol';
import type { HttpClient } from '../client.js';
import { isHttpError } from '../errors.js';
import {
  type AccessClaims,
  decodeToken,
  importJwks,
  unverifiedClaims,
  verifyDecoded,
} from './accessToken.js';

export interface TokenVerifierOptions {
  /** Verify against the server's JWKS; false reads the claims unchecked. */
  verifyTokens: boolean;
  issuer: string;
  audience: string;
  clockToleranceSeconds: number;
}

type Jwks = ReturnType<typeof importJwks>;

const JWKS_PATH = '/.well-known/jwks.json';

/** Checks access tokens against the keys the API publishes, fetched once and again for a new key. */
export class TokenVerifier {
  private jwks: Jwks | undefined;

  constructor(
    private readonly client: HttpClient,
    private readonly options: TokenVerifierOptions,
  ) {}

  /** Verifies `token` against the JWKS, refetching it once when the key id is unknown. */
  async verify(token: string, signal: AbortSignal): Promise<AccessClaims> {
    if (!this.options.verifyTokens) return unverifiedClaims(token);
    const decoded = decodeToken(token);
    const kid = decoded.header.kid;
    if (typeof kid !== 'string') {
      throw new SluiceError('ERR_TOKEN_INVALID', 'the access token names no key (kid)');
    }
    let key = (this.jwks ?? (await this.fetchJwks(signal))).get(kid);
    if (key === undefined && this.jwks !== undefined) key = (await this.fetchJwks(signal)).get(kid);
    if (key === undefined) {
      throw new SluiceError(
        'ERR_TOKEN_INVALID',
        `the access token is signed by a key that ${this.client.apiUrl} does not publish`,
      );
    }
    return await verifyDecoded(decoded, key, this.options);
  }

  private async fetchJwks(signal: AbortSignal): Promise<Jwks> {
    let doc: JwksResponse;
    try {
      doc = (await this.client.request('GET', JWKS_PATH, { signal })) as JwksResponse;
    } catch (e) {
      if (!isHttpError(e) || e.status < 400 || e.status >= 500) throw e;
      throw new SluiceError(
        'ERR_TOKEN_INVALID',
        `${this.client.apiUrl} publishes no JWKS (${e.status}) to verify tokens with; ` +
          'pass verifyTokens: false only if you trust the connection',
        { cause: e },
      );
    }
    this.jwks = importJwks(doc);
    return this.jwks;
  }
}
