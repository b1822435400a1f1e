import type { AccessClaims } from './auth/accessToken.js';
import { AuthFile } from './auth/authFile.js';
import { notLoggedIn, TokenLifecycle } from './auth/tokenLifecycle.js';
import { TokenVerifier } from './auth/tokenVerifier.js';
import { HttpClient } from './client.js';
import type { RequestOptions } from './requestOptions.js';

export interface SessionOptions {
  /** Base URL of the resource API, e.g. `https://api.example.com` or `http://127.0.0.1:8080/`. */
  apiUrl: string | URL;
  /**
   * Seconds before an access token expires at which it is renewed ahead of the next request
   * (default 60). Never more than half the token's lifetime, so short-lived tokens are not
   * renewed on every request.
   */
  authExpiryThreshold?: number;
  /** File that keeps the tokens across runs (mode 0600, replaced atomically, deleted on logout). */
  saveAuth?: string;
  /** The fetch to use (default the global one). */
  fetch?: typeof globalThis.fetch;
  /** Extra attempts for idempotent requests after a network error or 5xx (default 3). */
  retries?: number;
  /** First backoff delay in ms (default 200); doubles per attempt, with jitter. */
  retryBaseMs?: number;
  /** Longest single backoff delay in ms, also the cap on a server's Retry-After (default 5000). */
  retryMaxMs?: number;
  /** Verify every access token against the server's JWKS (default true). */
  verifyTokens?: boolean;
  /** Expected `iss` of access tokens (default `sluice`). */
  issuer?: string;
  /** Expected `aud` of access tokens (default `sluice-api`). */
  audience?: string;
  /** How far this machine's clock may be off when checking `exp` (default 60 s). */
  clockToleranceSeconds?: number;
}

/** The signed-in user, from the claims of the current (verified) access token. */
export type SessionUser = AccessClaims;

/**
 * An authenticated connection to the resource API: logs in, keeps the access token fresh (one
 * login or refresh at a time, whoever needs it), verifies tokens against the server's JWKS, retries
 * idempotent calls, and turns failures into typed errors.
 */
export class Session {
  readonly apiUrl: string;
  private readonly client: HttpClient;
  private readonly tokens: TokenLifecycle;

  constructor(options: SessionOptions) {
    const client = new HttpClient({
      apiUrl: options.apiUrl,
      fetch: options.fetch,
      retries: nonNegativeInteger('retries', options.retries ?? 3),
      retryBaseMs: nonNegative('retryBaseMs', options.retryBaseMs ?? 200),
      retryMaxMs: nonNegative('retryMaxMs', options.retryMaxMs ?? 5000),
      secrets: () => this.tokens.secrets(),
    });
    const verifier = new TokenVerifier(client, {
      verifyTokens: options.verifyTokens ?? true,
      issuer: options.issuer ?? 'sluice',
      audience: options.audience ?? 'sluice-api',
      clockToleranceSeconds: nonNegative(
        'clockToleranceSeconds',
        options.clockToleranceSeconds ?? 60,
      ),
    });
    this.client = client;
    this.apiUrl = client.apiUrl;
    this.tokens = new TokenLifecycle(client, {
      authExpiryThreshold: nonNegative('authExpiryThreshold', options.authExpiryThreshold ?? 60),
      verifier,
      authFile:
        options.saveAuth === undefined ? undefined : new AuthFile(options.saveAuth, this.apiUrl),
    });
  }

  /** Claims of the current access token, or null before login, after logout or until verified. */
  get user(): SessionUser | null {
    const claims = this.tokens.claims;
    return claims === undefined ? null : { ...claims };
  }

  /**
   * The account's email without contacting the server: the signed-in user's, else the one given
   * to `setCredentials`; null when neither is known.
   */
  get account(): string | null {
    return this.tokens.email ?? null;
  }

  /** Credentials for logins, including the automatic ones when a refresh is refused. */
  setCredentials(email: string, password: string): void {
    if (typeof email !== 'string' || email === '' || typeof password !== 'string' || !password) {
      throw new TypeError('setCredentials needs a non-empty email and password');
    }
    this.tokens.setCredentials({ email, password });
  }

  /** Logs in with the credentials given to `setCredentials`. */
  async login(signal?: AbortSignal): Promise<SessionUser> {
    if (!this.tokens.hasCredentials()) throw notLoggedIn('call setCredentials() before login()');
    await this.tokens.login(signal);
    return this.currentUser();
  }

  /** Exchanges the refresh token for a new pair of tokens (joins a login already under way). */
  async refresh(signal?: AbortSignal): Promise<SessionUser> {
    await this.tokens.refresh(signal);
    return this.currentUser();
  }

  /**
   * Forgets tokens and credentials, deletes the `saveAuth` file and revokes the refresh token on
   * the server. Local state is gone even when the server cannot be reached (the error is thrown).
   */
  logout(signal?: AbortSignal): Promise<void> {
    return this.tokens.logout(signal);
  }

  /**
   * One API call. Resolves with the parsed JSON (text for other content, undefined for an empty
   * body), or the Response itself with `raw: true`; rejects with a typed HttpError, NetworkError,
   * ERR_TOKEN_INVALID or ERR_ABORTED.
   */
  request<T = unknown>(
    method: string,
    path: string,
    options?: RequestOptions & { raw?: false },
  ): Promise<T>;
  request(method: string, path: string, options: RequestOptions & { raw: true }): Promise<Response>;
  request(method: string, path: string, options?: RequestOptions): Promise<unknown>;
  request(method: string, path: string, options: RequestOptions = {}): Promise<unknown> {
    const authorizer = options.auth === false ? undefined : this.tokens;
    return this.client.request(method, path, options, authorizer);
  }

  /**
   * `Bearer <token>` with a verified access token that is not about to expire (renewed first when
   * needed, single-flight like every request's): for transports that talk to the API directly.
   */
  async authorization(signal?: AbortSignal): Promise<string> {
    return `Bearer ${await this.tokens.accessToken(signal)}`;
  }

  /**
   * Tells the session the server refused `authorization` (a 401): the next `authorization()` or
   * request renews the token, once, however many callers report the same one.
   */
  tokenRefused(authorization: string): void {
    if (authorization.startsWith('Bearer ')) this.tokens.expire(authorization.slice(7));
  }

  private currentUser(): SessionUser {
    const user = this.user;
    if (user === null) throw notLoggedIn('not logged in');
    return user;
  }
}

function nonNegative(name: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new RangeError(`${name} must be a finite number ≥ 0`);
  }
  return v;
}

function nonNegativeInteger(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`${name} must be an integer ≥ 0`);
  return v;
}
