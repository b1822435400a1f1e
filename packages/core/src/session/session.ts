import { setTimeout as sleep } from 'node:timers/promises';
import { isSluiceError, SluiceError } from '@sluice/protocol';
import { abortError, throwIfAborted } from '../platform/abort.js';
import {
  type AccessClaims,
  decodeToken,
  importJwks,
  unverifiedClaims,
  verifyDecoded,
} from './accessToken.js';
import { deleteAuthFile, readAuthFile, writeAuthFile } from './authFile.js';
import { type HttpError, httpErrorFor, isHttpError, NetworkError } from './httpErrors.js';
import { SharedOperation } from './sharedOperation.js';
import { streamingFetch } from './streamingFetch.js';

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

export type SessionBody =
  | string
  | Uint8Array
  | ArrayBuffer
  | Blob
  | URLSearchParams
  | FormData
  | ReadableStream<Uint8Array>;

export interface RequestOptions {
  /** Sent as JSON with `content-type: application/json`. */
  json?: unknown;
  /**
   * A request body. A stream can be sent only once, so such a request is never retried; pass a
   * function that returns a fresh body to keep retries and the re-authentication retry.
   */
  body?: SessionBody | (() => SessionBody);
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Whether the request may be repeated (default: GET, HEAD, PUT, DELETE, OPTIONS). */
  idempotent?: boolean;
  /** Send the access token (default true); false for public routes. */
  auth?: boolean;
  /** Resolve with the Response (body unread) instead of its parsed content. */
  raw?: boolean;
}

/** The signed-in user, from the claims of the current (verified) access token. */
export type SessionUser = AccessClaims;

const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);
const JWKS_PATH = '/.well-known/jwks.json';

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
type Jwks = ReturnType<typeof importJwks>;

/**
 * An authenticated connection to the resource API: logs in, keeps the access token fresh (one
 * login or refresh at a time, whoever needs it), verifies tokens against the server's JWKS, retries
 * idempotent calls, and turns failures into typed errors.
 */
export class Session {
  readonly apiUrl: string;
  private readonly base: URL;
  private readonly threshold: number;
  private readonly saveAuth: string | undefined;
  private readonly fetchFn: typeof globalThis.fetch;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly verifyTokens: boolean;
  private readonly issuer: string;
  private readonly audience: string;
  private readonly clockTolerance: number;
  private credentials: { email: string; password: string } | undefined;
  private tokens: TokenState | undefined;
  private inFlight: SharedOperation<AuthKind> | undefined;
  private jwks: Jwks | undefined;
  /** Bumped by logout: a login that started before it must not bring the session back. */
  private epoch = 0;
  private saving: Promise<void> = Promise.resolve();

  constructor(options: SessionOptions) {
    this.base = new URL(String(options.apiUrl));
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') {
      throw new TypeError(`apiUrl must be http(s), got ${this.base.protocol}`);
    }
    this.base.username = '';
    this.base.password = '';
    this.base.search = '';
    this.base.hash = '';
    this.apiUrl = this.base.href;
    this.threshold = nonNegative('authExpiryThreshold', options.authExpiryThreshold ?? 60);
    this.retries = nonNegativeInteger('retries', options.retries ?? 3);
    this.retryBaseMs = nonNegative('retryBaseMs', options.retryBaseMs ?? 200);
    this.retryMaxMs = nonNegative('retryMaxMs', options.retryMaxMs ?? 5000);
    this.clockTolerance = nonNegative('clockToleranceSeconds', options.clockToleranceSeconds ?? 60);
    this.fetchFn = options.fetch ?? globalThis.fetch;
    this.verifyTokens = options.verifyTokens ?? true;
    this.issuer = options.issuer ?? 'sluice';
    this.audience = options.audience ?? 'sluice-api';
    this.saveAuth = options.saveAuth;
    if (this.saveAuth !== undefined) {
      const saved = readAuthFile(this.saveAuth, this.apiUrl);
      if (saved !== undefined) {
        this.tokens = { ...saved, claims: undefined, deadline: 0, lifetime: 0 };
      }
    }
  }

  /** Claims of the current access token, or null before login, after logout or until verified. */
  get user(): SessionUser | null {
    const claims = this.tokens?.claims;
    return claims === undefined ? null : { ...claims };
  }

  /** Credentials for logins, including the automatic ones when a refresh is refused. */
  setCredentials(email: string, password: string): void {
    if (typeof email !== 'string' || email === '' || typeof password !== 'string' || !password) {
      throw new TypeError('setCredentials needs a non-empty email and password');
    }
    this.credentials = { email, password };
  }

  /** Logs in with the credentials given to `setCredentials`. */
  async login(signal?: AbortSignal): Promise<SessionUser> {
    if (this.credentials === undefined) throw notLoggedIn('call setCredentials() before login()');
    await this.authenticate('login', signal);
    return this.currentUser();
  }

  /** Exchanges the refresh token for a new pair of tokens (joins a login already under way). */
  async refresh(signal?: AbortSignal): Promise<SessionUser> {
    await this.authenticate('refresh', signal);
    return this.currentUser();
  }

  /**
   * Forgets tokens and credentials, deletes the `saveAuth` file and revokes the refresh token on
   * the server. Local state is gone even when the server cannot be reached (the error is thrown).
   */
  async logout(signal?: AbortSignal): Promise<void> {
    // A refresh under way would rotate the token we are about to revoke: let it finish first.
    const running = this.inFlight;
    if (running !== undefined) {
      await running.wait(signal).catch((e: unknown) => {
        if (signal?.aborted) throw e;
      });
    }
    this.epoch += 1;
    const refreshToken = this.tokens?.refreshToken;
    this.tokens = undefined;
    this.credentials = undefined;
    await this.persist(undefined);
    if (refreshToken !== undefined) {
      await this.request('POST', '/logout', {
        json: { refreshToken },
        auth: false,
        idempotent: true,
        ...(signal === undefined ? {} : { signal }),
      });
    }
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
  async request(method: string, path: string, options: RequestOptions = {}): Promise<unknown> {
    const { signal } = options;
    throwIfAborted(signal);
    const verb = method.toUpperCase();
    const url = this.urlFor(path);
    const auth = options.auth ?? true;
    const replayable = isReplayable(options.body);
    const idempotent = (options.idempotent ?? IDEMPOTENT_METHODS.has(verb)) && replayable;
    let reauthenticated = false;
    for (let attempt = 0; ; ) {
      const token = auth ? await this.accessToken(signal) : undefined;
      let outcome: { value: unknown } | { error: HttpError };
      try {
        outcome = await this.send(verb, url, options, token);
      } catch (e) {
        if (signal?.aborted) throw abortError(signal);
        if (!isHttpError(e, 'ERR_NETWORK') || !idempotent || attempt >= this.retries) throw e;
        await this.backoff(attempt, undefined, signal);
        attempt += 1;
        continue;
      }
      if ('value' in outcome) return outcome.value;
      const error = outcome.error;
      const refused =
        error.status === 401 ||
        (error.status === 403 && error.serverCode !== 'ERR_DEVICE_NOT_BOUND');
      if (auth && refused && !reauthenticated && token !== undefined) {
        // Even a stream body that cannot be resent leaves a renewed token for the next call.
        this.expire(token);
        if (replayable) {
          reauthenticated = true;
          continue;
        }
      }
      if (error.status >= 500 && idempotent && attempt < this.retries) {
        await this.backoff(attempt, error.retryAfterSeconds, signal);
        attempt += 1;
        continue;
      }
      throw error;
    }
  }

  /**
   * `Bearer <token>` with a verified access token that is not about to expire (renewed first when
   * needed, single-flight like every request's): for transports that talk to the API directly.
   */
  async authorization(signal?: AbortSignal): Promise<string> {
    return `Bearer ${await this.accessToken(signal)}`;
  }

  /**
   * Tells the session the server refused `authorization` (a 401): the next `authorization()` or
   * request renews the token, once, however many callers report the same one.
   */
  tokenRefused(authorization: string): void {
    if (authorization.startsWith('Bearer ')) this.expire(authorization.slice(7));
  }

  private currentUser(): SessionUser {
    const user = this.user;
    if (user === null) throw notLoggedIn('not logged in');
    return user;
  }

  /** A verified access token that is not about to expire, renewing it first when needed. */
  private async accessToken(signal: AbortSignal | undefined): Promise<string> {
    const t = this.tokens;
    if (t?.claims !== undefined && !this.nearExpiry(t)) return t.accessToken;
    await this.authenticate('auto', signal);
    const renewed = this.tokens;
    if (renewed?.claims === undefined) throw notLoggedIn('not logged in');
    return renewed.accessToken;
  }

  private nearExpiry(t: TokenState): boolean {
    const threshold = Math.min(this.threshold * 1000, t.lifetime / 2);
    return t.deadline - Date.now() < threshold;
  }

  /** Marks `token` as refused by the server, unless it was already replaced. */
  private expire(token: string): void {
    if (this.tokens?.accessToken === token) this.tokens.deadline = Number.NEGATIVE_INFINITY;
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
      op.promise.then(
        () => this.settle(op),
        () => this.settle(op),
      );
      return op.wait(signal);
    }
  }

  private settle(op: SharedOperation<AuthKind>): void {
    if (this.inFlight === op) this.inFlight = undefined;
  }

  private async runAuth(kind: AuthKind, signal: AbortSignal): Promise<void> {
    const epoch = this.epoch;
    if (kind === 'auto' && (await this.reloadedTokenUsable(signal))) return;
    let issued: unknown;
    let sentAt = Date.now();
    const refreshToken = this.tokens?.refreshToken;
    if (kind !== 'login' && refreshToken !== undefined) {
      try {
        issued = await this.request('POST', '/token/refresh', {
          json: { refreshToken },
          auth: false,
          idempotent: false,
          signal,
        });
      } catch (e) {
        const refused = isHttpError(e, 'ERR_UNAUTHORIZED');
        // A refused refresh token is dead: forget it so the next attempt logs in.
        if (refused && this.tokens?.refreshToken === refreshToken) this.tokens = undefined;
        if (!(refused && kind === 'auto' && this.credentials !== undefined)) throw e;
      }
    } else if (kind === 'refresh') {
      throw notLoggedIn('no refresh token: log in first');
    }
    if (issued === undefined) {
      if (this.credentials === undefined) {
        throw notLoggedIn('not logged in: call setCredentials() or login() first');
      }
      sentAt = Date.now();
      issued = await this.request('POST', '/login', {
        json: this.credentials,
        auth: false,
        idempotent: true,
        signal,
      });
    }
    const { accessToken, refreshToken: nextRefresh } = (issued ?? {}) as Record<string, unknown>;
    if (typeof accessToken !== 'string' || typeof nextRefresh !== 'string') {
      throw new SluiceError('ERR_BAD_RESPONSE', `${this.apiUrl} answered a login without tokens`);
    }
    let claims: AccessClaims;
    try {
      claims = await this.verify(accessToken, signal);
    } catch (e) {
      // The server already rotated our refresh token; what came back cannot be trusted.
      if (isSluiceError(e, 'ERR_TOKEN_INVALID') && epoch === this.epoch) this.tokens = undefined;
      throw e;
    }
    if (epoch !== this.epoch) throw notLoggedIn('logged out while signing in');
    const lifetime = (claims.exp - claims.iat) * 1000;
    this.tokens = {
      accessToken,
      refreshToken: nextRefresh,
      claims,
      // The server's clock decides exp; counting its lifetime from our send time ignores skew.
      deadline: sentAt + lifetime,
      lifetime,
    };
    await this.persist({ accessToken, refreshToken: nextRefresh });
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
      claims = await this.verify(t.accessToken, signal);
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

  /** Verifies `token` against the JWKS, refetching it once when the key id is unknown. */
  private async verify(token: string, signal: AbortSignal): Promise<AccessClaims> {
    if (!this.verifyTokens) return unverifiedClaims(token);
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
        `the access token is signed by a key that ${this.apiUrl} does not publish`,
      );
    }
    return verifyDecoded(decoded, key, {
      issuer: this.issuer,
      audience: this.audience,
      clockToleranceSeconds: this.clockTolerance,
    });
  }

  private async fetchJwks(signal: AbortSignal): Promise<Jwks> {
    let doc: unknown;
    try {
      doc = await this.request('GET', JWKS_PATH, { auth: false, signal });
    } catch (e) {
      if (!isHttpError(e) || e.status < 400 || e.status >= 500) throw e;
      throw new SluiceError(
        'ERR_TOKEN_INVALID',
        `${this.apiUrl} publishes no JWKS (${e.status}) to verify tokens with; ` +
          'pass verifyTokens: false only if you trust the connection',
        { cause: e },
      );
    }
    this.jwks = importJwks(doc);
    return this.jwks;
  }

  /** Saves (or with undefined deletes) the `saveAuth` file, one write at a time, in call order. */
  private persist(auth: { accessToken: string; refreshToken: string } | undefined): Promise<void> {
    const path = this.saveAuth;
    if (path === undefined) return Promise.resolve();
    const next = this.saving
      .catch(() => {})
      .then(() =>
        auth === undefined ? deleteAuthFile(path) : writeAuthFile(path, this.apiUrl, auth),
      );
    this.saving = next;
    return next;
  }

  /** One HTTP exchange: a typed error for non-2xx answers, NetworkError when none arrived. */
  private async send(
    method: string,
    url: URL,
    options: RequestOptions,
    token: string | undefined,
  ): Promise<{ value: unknown } | { error: HttpError }> {
    const shown = url.href;
    const headers = new Headers(options.headers);
    if (!headers.has('accept')) headers.set('accept', 'application/json');
    if (token !== undefined) headers.set('authorization', `Bearer ${token}`);
    let body: SessionBody | undefined;
    if (options.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      body = typeof options.body === 'function' ? options.body() : options.body;
    }
    const init: RequestInit & { duplex?: 'half' } = { method, headers, body: body ?? null };
    if (body instanceof ReadableStream) init.duplex = 'half';
    if (options.signal !== undefined) init.signal = options.signal;
    let res: Response;
    try {
      // A streamed body goes over node:http unless the caller supplied its own fetch.
      res =
        body instanceof ReadableStream && this.fetchFn === globalThis.fetch
          ? await streamingFetch(url, init)
          : await this.fetchFn(url, init);
    } catch (e) {
      if (options.signal?.aborted) throw abortError(options.signal);
      throw new NetworkError({
        method,
        url: shown,
        serverMessage: this.redact(describeCause(e)),
        cause: e,
      });
    }
    try {
      if (res.ok) {
        if (options.raw === true) return { value: res };
        return { value: await this.parse(res, method, shown) };
      }
      const text = await res.text();
      let serverMessage: string | undefined = res.statusText || undefined;
      let serverCode: string | undefined;
      try {
        const parsed = JSON.parse(text) as { error?: unknown; code?: unknown };
        if (typeof parsed.error === 'string') serverMessage = this.redact(parsed.error);
        if (typeof parsed.code === 'string') serverCode = parsed.code;
      } catch {
        // Not a sluice error body (a proxy's page): the status text stands.
      }
      const retryAfterSeconds = parseRetryAfter(res.headers.get('retry-after'));
      return {
        error: httpErrorFor({
          status: res.status,
          method,
          url: shown,
          ...(serverMessage === undefined ? {} : { serverMessage }),
          ...(serverCode === undefined ? {} : { serverCode }),
          ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
        }),
      };
    } catch (e) {
      if (options.signal?.aborted) throw abortError(options.signal);
      if (isSluiceError(e)) throw e;
      throw new NetworkError({
        method,
        url: shown,
        serverMessage: `the answer was cut off: ${this.redact(describeCause(e))}`,
        cause: e,
      });
    }
  }

  private async parse(res: Response, method: string, url: string): Promise<unknown> {
    const text = await res.text();
    if (text === '') return undefined;
    const type = res.headers.get('content-type') ?? '';
    if (!/\bjson\b/i.test(type)) return text;
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      throw new SluiceError('ERR_BAD_RESPONSE', `${method} ${url} answered invalid JSON`, {
        cause: e,
      });
    }
  }

  /** Exponential backoff with jitter: half the doubled delay fixed, half random. */
  private async backoff(
    attempt: number,
    retryAfterSeconds: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const ceiling = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** attempt);
    let delay = ceiling / 2 + (Math.random() * ceiling) / 2;
    if (retryAfterSeconds !== undefined) {
      delay = Math.min(this.retryMaxMs, Math.max(delay, retryAfterSeconds * 1000));
    }
    try {
      await sleep(delay, undefined, signal === undefined ? {} : { signal });
    } catch (e) {
      if (signal?.aborted) throw abortError(signal);
      throw e;
    }
  }

  /** Resolves `path` under the API URL; absolute URLs are refused so tokens go nowhere else. */
  private urlFor(path: string): URL {
    if (typeof path !== 'string' || !path.startsWith('/') || path.startsWith('//')) {
      throw new SluiceError('ERR_INVALID_ARG', `request path must start with one "/": ${path}`);
    }
    const url = new URL(this.base.href);
    const [pathname = '', query] = splitOnce(path, '?');
    url.pathname = `${url.pathname.replace(/\/+$/, '')}${pathname}`;
    if (query !== undefined) url.search = `?${query}`;
    return url;
  }

  /** Removes the password and tokens from text the server or the network stack produced. */
  private redact(text: string): string {
    let out = text;
    for (const secret of [
      this.credentials?.password,
      this.tokens?.accessToken,
      this.tokens?.refreshToken,
    ]) {
      if (secret !== undefined && secret.length > 0) out = out.split(secret).join('[redacted]');
    }
    return out;
  }
}

function isReplayable(body: RequestOptions['body']): boolean {
  return !(body instanceof ReadableStream);
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

function describeCause(e: unknown): string {
  const cause = (e as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message;
  return e instanceof Error ? e.message : String(e);
}

function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - Date.now()) / 1000);
}

function notLoggedIn(message: string): SluiceError {
  return new SluiceError('ERR_NOT_LOGGED_IN', message);
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
