import {
  isSluiceError,
  type LoginRequest,
  type RefreshRequest,
  SluiceError,
  type TokenResponse,
} from '@sluice/protocol';
import { throwIfAborted } from '../../platform/abort.js';
import type { Authorizer, HttpClient } from '../client.js';
import { isHttpError } from '../errors.js';
import type { AccessClaims } from './accessToken.js';
import type { AuthFile } from './authFile.js';
import { SharedOperation } from './sharedOperation.js';
import type { TokenVerifier } from './tokenVerifier.js';

export interface TokenLifecycleOptions {
  /** Seconds before expiry at which a token is renewed (at most half its lifetime). */
  authExpiryThreshold: number;
  verifier: TokenVerifier;
  /** Where the tokens are kept across runs, if anywhere. */
  authFile: AuthFile | undefined;
}

interface TokenState {
  accessToken: string;
  refreshToken: string;
  /** Undefined until verified (tokens reloaded from `saveAuth`). */
  claims: AccessClaims | undefined;
  /** Local time (ms) at which the access token expires. */
  deadline: number;
  /** Lifetime of the access token in ms. */
  lifetime: number;
}

type AuthKind = 'login' | 'refresh' | 'auto';

/**
 * The tokens of a session: login, refresh and logout, with one authentication in flight however
 * many requests need it, renewal before expiry and after a refusal, and the saved login.
 */
export class TokenLifecycle implements Authorizer {
  private readonly threshold: number;
  private readonly verifier: TokenVerifier;
  private readonly authFile: AuthFile | undefined;
  private credentials: LoginRequest | undefined;
  private tokens: TokenState | undefined;
  private inFlight: SharedOperation<AuthKind> | undefined;
  /** Bumped by logout: a login that started before it must not bring the session back. */
  private epoch = 0;

  constructor(
    private readonly client: HttpClient,
    options: TokenLifecycleOptions,
  ) {
    this.threshold = options.authExpiryThreshold;
    this.verifier = options.verifier;
    this.authFile = options.authFile;
    const saved = this.authFile?.read();
    if (saved !== undefined)
      this.tokens = { ...saved, claims: undefined, deadline: 0, lifetime: 0 };
  }

  /** Claims of the current verified access token, if any. */
  get claims(): AccessClaims | undefined {
    return this.tokens?.claims;
  }

  /** The account: the verified token's email, else the credentials'. */
  get email(): string | undefined {
    return this.tokens?.claims?.email ?? this.credentials?.email;
  }

  /** The password and tokens, to keep out of error messages. */
  secrets(): Array<string | undefined> {
    return [this.credentials?.password, this.tokens?.accessToken, this.tokens?.refreshToken];
  }

  setCredentials(credentials: LoginRequest): void {
    this.credentials = credentials;
  }

  hasCredentials(): boolean {
    return this.credentials !== undefined;
  }

  /** Logs in with the credentials (after any refresh under way), or joins a login under way. */
  login(signal: AbortSignal | undefined): Promise<void> {
    return this.authenticate('login', signal);
  }

  /** Exchanges the refresh token for a new pair (joins an authentication already under way). */
  refresh(signal: AbortSignal | undefined): Promise<void> {
    return this.authenticate('refresh', signal);
  }

  /** Forgets tokens and credentials and the saved login, then revokes the refresh token. */
  async logout(signal: AbortSignal | undefined): Promise<void> {
    // A refresh under way would rotate the token we are about to revoke: let it finish first.
    await this.inFlight?.wait(signal).catch((e: unknown) => {
      if (signal?.aborted) throw e;
    });
    this.epoch += 1;
    const refreshToken = this.tokens?.refreshToken;
    this.tokens = undefined;
    this.credentials = undefined;
    await this.authFile?.save(undefined);
    if (refreshToken !== undefined) {
      const body: RefreshRequest = { refreshToken };
      await this.client.request('POST', '/logout', { json: body, idempotent: true, signal });
    }
  }

  /** A verified access token that is not about to expire, renewing it first when needed. */
  async accessToken(signal: AbortSignal | undefined): Promise<string> {
    const t = this.tokens;
    if (t?.claims !== undefined && !this.nearExpiry(t)) return t.accessToken;
    await this.authenticate('auto', signal);
    const renewed = this.tokens;
    if (renewed?.claims === undefined) throw notLoggedIn('not logged in');
    return renewed.accessToken;
  }

  /** Marks `token` as refused by the server, unless it was already replaced. */
  expire(token: string): void {
    if (this.tokens?.accessToken === token) this.tokens.deadline = Number.NEGATIVE_INFINITY;
  }

  private nearExpiry(t: TokenState): boolean {
    const threshold = Math.min(this.threshold * 1000, t.lifetime / 2);
    return t.deadline - Date.now() < threshold;
  }

  /** Runs or joins the one authentication under way. */
  private async authenticate(kind: AuthKind, signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      throwIfAborted(signal);
      const running = this.inFlight;
      if (running !== undefined && !running.abandoned) {
        // An explicit login means these credentials: wait out a refresh, then log in.
        if (kind === 'login' && running.kind !== 'login') {
          await running.wait(signal).catch((e: unknown) => {
            if (signal?.aborted) throw e;
          });
          continue;
        }
        return running.wait(signal);
      }
      const op = new SharedOperation(kind, (opSignal) => this.runAuth(kind, opSignal));
      this.inFlight = op;
      const settle = () => {
        if (this.inFlight === op) this.inFlight = undefined;
      };
      op.promise.then(settle, settle);
      return op.wait(signal);
    }
  }

  private async runAuth(kind: AuthKind, signal: AbortSignal): Promise<void> {
    const epoch = this.epoch;
    if (kind === 'auto' && (await this.reloadedTokenUsable(signal))) return;
    const issued = await this.issue(kind, signal);
    const { accessToken, refreshToken } = (issued.tokens ?? {}) as Partial<TokenResponse>;
    if (typeof accessToken !== 'string' || typeof refreshToken !== 'string') {
      throw new SluiceError(
        'ERR_BAD_RESPONSE',
        `${this.client.apiUrl} answered a login without tokens`,
      );
    }
    let claims: AccessClaims;
    try {
      claims = await this.verifier.verify(accessToken, signal);
    } catch (e) {
      // The server already rotated our refresh token; what came back cannot be trusted.
      if (isSluiceError(e, 'ERR_TOKEN_INVALID') && epoch === this.epoch) this.tokens = undefined;
      throw e;
    }
    if (epoch !== this.epoch) throw notLoggedIn('logged out while signing in');
    const lifetime = (claims.exp - claims.iat) * 1000;
    this.tokens = {
      accessToken,
      refreshToken,
      claims,
      // The server's clock decides exp; counting its lifetime from our send time ignores skew.
      deadline: issued.sentAt + lifetime,
      lifetime,
    };
    await this.authFile?.save({ accessToken, refreshToken });
  }

  /**
   * New tokens: from the refresh token unless this is a login, else (or when an automatic
   * refresh is refused and credentials are known) from a login. `sentAt` is when they were asked for.
   */
  private async issue(
    kind: AuthKind,
    signal: AbortSignal,
  ): Promise<{ tokens: TokenResponse | undefined; sentAt: number }> {
    const refreshToken = this.tokens?.refreshToken;
    if (kind !== 'login' && refreshToken !== undefined) {
      const sentAt = Date.now();
      try {
        const body: RefreshRequest = { refreshToken };
        const tokens = (await this.client.request('POST', '/token/refresh', {
          json: body,
          idempotent: false,
          signal,
        })) as TokenResponse | undefined;
        // An empty answer carries no tokens: a login may still get them.
        if (tokens !== undefined) return { tokens, sentAt };
      } catch (e) {
        const refused = isHttpError(e, 'ERR_UNAUTHORIZED');
        // A refused refresh token is dead: forget it so the next attempt logs in.
        if (refused && this.tokens?.refreshToken === refreshToken) this.tokens = undefined;
        if (!(refused && kind === 'auto' && this.credentials !== undefined)) throw e;
      }
    } else if (kind === 'refresh') {
      throw notLoggedIn('no refresh token: log in first');
    }
    if (this.credentials === undefined) {
      throw notLoggedIn('not logged in: call setCredentials() or login() first');
    }
    const sentAt = Date.now();
    const tokens = (await this.client.request('POST', '/login', {
      json: this.credentials,
      idempotent: true,
      signal,
    })) as TokenResponse | undefined;
    return { tokens, sentAt };
  }

  /**
   * Verifies a token reloaded from `saveAuth`. True when it can be used as is; a token that fails
   * verification is dropped (its refresh token is still tried).
   */
  private async reloadedTokenUsable(signal: AbortSignal): Promise<boolean> {
    const t = this.tokens;
    if (t === undefined || t.claims !== undefined) return false;
    let claims: AccessClaims;
    try {
      claims = await this.verifier.verify(t.accessToken, signal);
    } catch (e) {
      if (!isSluiceError(e, 'ERR_TOKEN_INVALID')) throw e;
      t.deadline = Number.NEGATIVE_INFINITY;
      return false;
    }
    t.claims = claims;
    t.deadline = claims.exp * 1000;
    t.lifetime = (claims.exp - claims.iat) * 1000;
    return !this.nearExpiry(t);
  }
}

export function notLoggedIn(message: string): SluiceError {
  return new SluiceError('ERR_NOT_LOGGED_IN', message);
}
