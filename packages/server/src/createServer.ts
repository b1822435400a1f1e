import { randomBytes } from 'node:crypto';
import { S3Objects } from '@sluice/cdn';
import type { CdnConfig } from '@sluice/protocol';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { createGuard, type GuardRequest } from './auth/guardRequest.js';
import { loadOrCreateSigningKeys, type SigningKeys } from './auth/keys.js';
import { DEFAULT_LOGIN_LIMITS, LoginLimiter, type LoginLimits } from './auth/loginLimiter.js';
import {
  DEFAULT_SCRYPT_PARAMS,
  hashPassword,
  type ScryptParams,
  validateScryptParams,
} from './auth/passwordHash.js';
import { TokenService } from './auth/tokens.js';
import { invalidSetting, type ResolvedCdnConfig, resolveCdnConfig } from './cdn/cdnConfig.js';
import { ConnectionDrainer } from './connectionDrainer.js';
import { API_ERROR_STATUS, type ApiErrorCode, isApiError } from './errors.js';
import { parcelRoutes } from './parcels/parcelRoutes.js';
import { authRoutes } from './routes/authRoutes.js';
import { cdnConfigRoutes } from './routes/cdnConfigRoutes.js';
import { DEFAULT_BIG_PART_LIMIT, resourceRoutes } from './routes/resourceRoutes.js';
import { installRouteGuard, type RouteInfo } from './routes/routeGuard.js';
import { userRoutes } from './routes/userRoutes.js';
import type { ServerContext } from './serverContext.js';
import { BlobStore } from './stores/blobStore.js';
import { loadOrCreateMasterKey } from './stores/masterKey.js';
import { MetadataStore } from './stores/metadataStore.js';
import type { PartStorage } from './stores/partStorage.js';
import { S3PartStore, type S3StorageConfig } from './stores/s3PartStore.js';

/** Largest JSON body accepted by default (user administration and login need far less). */
export const DEFAULT_BODY_LIMIT = 64 * 1024;

/** How long `close()` lets in-flight requests run by default before it cuts them off. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 30_000;

/** Log fields that could ever hold a secret; pino replaces them wherever they appear. */
export const LOG_REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-auth-token"]',
  // @fastify/multipart logs the request headers at trace level under its own key (F6).
  '*.headers.authorization',
  '*.headers.cookie',
  '*.headers["x-auth-token"]',
  '*.headers["x-signature"]',
  'req.body',
  'body',
  'password',
  '*.password',
  'passwordHash',
  '*.passwordHash',
  'accessToken',
  '*.accessToken',
  'refreshToken',
  '*.refreshToken',
  'token',
  '*.token',
  'secretAccessKey',
  '*.secretAccessKey',
];

export interface LoggerOptions {
  level?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** Where JSON log lines go (default stdout). */
  stream?: { write(line: string): unknown };
}

export interface ServerOptions {
  /** The embedded default's data directory (created 0700). */
  dataDir: string;
  /** Structured JSON logs (pino) with secrets redacted; off by default. */
  logger?: boolean | LoggerOptions;
  /** `iss` of the tokens this server signs and accepts (default `sluice`). */
  issuer?: string;
  /** `aud` of the tokens this server signs and accepts (default `sluice-api`). */
  audience?: string;
  accessTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
  /** Maximum request body in bytes (default 64 KiB); larger bodies get 413. */
  bodyLimit?: number;
  loginLimits?: LoginLimits;
  /** scrypt parameters for new password hashes (default N=2^15, r=8, p=1). */
  scrypt?: ScryptParams;
  /** Largest big part an upload may carry, in bytes (default 64 GiB; small parts: 16 MiB). */
  bigPartLimit?: number;
  /** Passed to Fastify: set it when behind a reverse proxy so limits see client addresses. */
  trustProxy?: boolean | string | string[];
  /**
   * How long `close()` lets in-flight requests (uploads, big-part downloads) run before it
   * destroys their connections, in ms (default 30 s).
   */
  shutdownGraceMs?: number;
  /**
   * Where big parts live for clients: `{kind: 'http'}` (default: this API's big-part route) or
   * an S3 store with separate downloader and uploader keys, handed out by `POST /cdn-config`.
   */
  cdn?: CdnConfig;
  /**
   * Where the server keeps small parts (and big parts uploaded through the API): the data
   * directory (default) or an S3 bucket of its own. Metadata stays in the data directory.
   */
  storage?: { kind: 'file' } | S3StorageConfig;
}

export interface SluiceServer {
  /** The Fastify instance, not yet listening (routes may still be added before `listen`). */
  app: FastifyInstance;
  /** The check every route uses, for other services in the same process. */
  guardRequest: GuardRequest;
  store: MetadataStore;
  /** The data directory's blob files (with S3 storage only its temp area is used). */
  blobs: BlobStore;
  /** Where small and big parts are kept: `blobs`, or the S3 bucket of the `storage` option. */
  storage: PartStorage;
  keys: SigningKeys;
  tokens: TokenService;
  /** Every route with the operation it is guarded by (what docs/API.md documents). */
  routes: readonly RouteInfo[];
  /**
   * Stops accepting connections, closes idle ones at once, lets in-flight requests end (up to
   * `shutdownGraceMs`, then destroys their connections), writes the metadata file and releases
   * the data directory. Calling it again returns the same promise.
   */
  close(): Promise<void>;
}

/** Builds the resource API over the data directory: store, keys, tokens, guard and routes. */
export async function createServer(options: ServerOptions): Promise<SluiceServer> {
  const scrypt = options.scrypt ?? DEFAULT_SCRYPT_PARAMS;
  validateScryptParams(scrypt);
  const cdn = resolveCdnConfig(options.cdn);
  const storageKind: unknown = options.storage?.kind ?? 'file';
  if (storageKind !== 'file' && storageKind !== 's3') {
    throw invalidSetting('storage.kind', `must be 'file' or 's3'`);
  }
  const store = await MetadataStore.open(options.dataDir);
  // What build() opened before it failed (S3 clients), released with the store.
  const opened: (() => Promise<void>)[] = [];
  try {
    return await build(options, scrypt, store, cdn, opened);
  } catch (e) {
    for (const release of opened.reverse()) await release().catch(() => {});
    await store.close();
    throw e;
  }
}

async function build(
  options: ServerOptions,
  scrypt: ScryptParams,
  store: MetadataStore,
  cdn: ResolvedCdnConfig,
  opened: (() => Promise<void>)[],
): Promise<SluiceServer> {
  const keys = await loadOrCreateSigningKeys(options.dataDir);
  const tokens = new TokenService(store, keys, {
    issuer: options.issuer ?? 'sluice',
    audience: options.audience ?? 'sluice-api',
    ...(options.accessTokenTtlSeconds === undefined
      ? {}
      : { accessTokenTtlSeconds: options.accessTokenTtlSeconds }),
    ...(options.refreshTokenTtlSeconds === undefined
      ? {}
      : { refreshTokenTtlSeconds: options.refreshTokenTtlSeconds }),
  });
  const guardRequest = createGuard(store, tokens);
  const bigPartLimit = options.bigPartLimit ?? DEFAULT_BIG_PART_LIMIT;
  if (!Number.isSafeInteger(bigPartLimit) || bigPartLimit < 1) {
    throw invalidSetting('bigPartLimit', `must be a positive integer, got ${bigPartLimit}`);
  }
  const shutdownGraceMs = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
  if (!Number.isSafeInteger(shutdownGraceMs) || shutdownGraceMs < 0) {
    throw invalidSetting('shutdownGraceMs', `must be an integer ≥ 0, got ${shutdownGraceMs}`);
  }
  const blobs = await BlobStore.open(options.dataDir);
  const storage =
    options.storage?.kind === 's3' ? await S3PartStore.open(options.storage, blobs) : blobs;
  opened.push(() => storage.close());
  const cdnObjects =
    cdn.kind === 's3'
      ? new S3Objects({
          endpoint: cdn.endpoint,
          region: cdn.region,
          bucket: cdn.bucket,
          uploader: cdn.uploader,
        })
      : null;
  opened.push(async () => cdnObjects?.destroy());
  const referenced = new Set(
    Object.values(store.snapshot().resources).flatMap((r) =>
      r.versions.flatMap((v) =>
        v.bigBlobId === null ? [v.smallBlobId] : [v.smallBlobId, v.bigBlobId],
      ),
    ),
  );
  const orphans = await storage.removeUnreferenced(referenced);
  const masterKey = await loadOrCreateMasterKey(options.dataDir);
  const ctx: ServerContext = {
    store,
    keys,
    tokens,
    guardRequest,
    limiter: new LoginLimiter(options.loginLimits ?? DEFAULT_LOGIN_LIMITS),
    scrypt,
    dummyPasswordHash: await hashPassword(randomBytes(32).toString('base64url'), scrypt),
    blobs: storage,
    masterKey,
    bigPartLimit,
    cdn,
    cdnObjects,
  };

  const app = Fastify({
    logger: loggerConfig(options.logger),
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    trustProxy: options.trustProxy ?? false,
    exposeHeadRoutes: false,
    // Fields documented as strings must be strings: Ajv's default coercion would turn a number
    // into a password or a one-element array into an email (docs/SECURITY.md, F1).
    ajv: { customOptions: { coerceTypes: false } },
    // Names are checked by the routes (up to 128 characters, docs/API.md); the router's default
    // limit of 100 would cut longer valid names off before they get there (F4).
    routerOptions: { maxParamLength: 1024 },
    // A URL the router cannot decode gets the API's error shape, without echoing the path (F2).
    frameworkErrors: (error, request, reply) => {
      request.log.info({ code: error.code }, 'malformed request');
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const body = {
        error: tooLong ? 'path parameter too long' : 'malformed URL',
        code: 'ERR_BAD_REQUEST',
      };
      // (the generic reply type of this hook cannot be narrowed here; the body is plain JSON)
      void (reply as unknown as FastifyReply).status(400).send(body);
    },
  });
  const drainer = new ConnectionDrainer(app.server);
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const { status, code, message, retryAfterSeconds } = describeError(error, app);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code, status }, message);
    if (retryAfterSeconds !== undefined) reply.header('retry-after', String(retryAfterSeconds));
    return reply.status(status).send({ error: message, code });
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    return reply
      .status(404)
      .send({ error: `no route ${request.method} ${path.slice(0, 200)}`, code: 'ERR_NOT_FOUND' });
  });

  if (orphans.length > 0) {
    app.log.warn(
      { event: 'blobs.orphansRemoved', count: orphans.length },
      'unreferenced blobs removed',
    );
  }
  const routes = installRouteGuard(app, guardRequest);
  await app.register(authRoutes, ctx);
  await app.register(userRoutes, ctx);
  await app.register(resourceRoutes, ctx);
  await app.register(cdnConfigRoutes, ctx);
  await app.register(parcelRoutes, ctx);

  let closed: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    const fastifyClosed = app.close();
    drainer.drain();
    const cutOff = setTimeout(() => {
      const cut = drainer.destroyAll();
      if (cut > 0) {
        app.log.warn(
          { event: 'shutdown.cutOff', requests: cut, graceMs: shutdownGraceMs },
          'requests still running at the end of the shutdown grace period were cut off',
        );
      }
    }, shutdownGraceMs);
    try {
      await fastifyClosed;
    } finally {
      clearTimeout(cutOff);
    }
    for (const release of opened.reverse()) await release();
    await store.close();
  };

  return {
    app,
    guardRequest,
    store,
    blobs,
    storage,
    keys,
    tokens,
    routes,
    close() {
      closed ??= close();
      return closed;
    },
  };
}

function loggerConfig(logger: ServerOptions['logger']) {
  if (logger === undefined || logger === false) return false;
  const opts = logger === true ? {} : logger;
  return {
    level: opts.level ?? 'info',
    redact: { paths: LOG_REDACT_PATHS, censor: '[redacted]' },
    ...(opts.stream === undefined ? {} : { stream: opts.stream }),
  };
}

interface ErrorAnswer {
  status: number;
  code: ApiErrorCode;
  message: string;
  retryAfterSeconds?: number;
}

/** Status → code for errors that carry only a status; the first (generic) code of a status wins. */
const STATUS_CODES: Readonly<Record<number, ApiErrorCode>> = Object.fromEntries(
  Object.entries(API_ERROR_STATUS)
    .reverse()
    .map(([code, status]) => [status, code as ApiErrorCode]),
);

/**
 * Turns any error into the `{ error, code }` answer. Parser messages are replaced by fixed ones:
 * a JSON syntax error quotes the body, which may hold a password.
 */
function describeError(error: FastifyError, app: FastifyInstance): ErrorAnswer {
  if (isApiError(error)) {
    return {
      status: error.statusCode,
      code: error.code,
      message: error.message,
      ...(error.retryAfterSeconds === undefined
        ? {}
        : { retryAfterSeconds: error.retryAfterSeconds }),
    };
  }
  if (error.validation !== undefined) {
    return { status: 400, code: 'ERR_BAD_REQUEST', message: error.message };
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        code: 'ERR_TOO_LARGE',
        message: `request body exceeds ${app.initialConfig.bodyLimit} bytes`,
      };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, code: 'ERR_BAD_REQUEST', message: 'request body is not valid JSON' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        code: 'ERR_UNSUPPORTED_MEDIA_TYPE',
        message: 'unsupported content type; send application/json',
      };
  }
  const status = typeof error.statusCode === 'number' ? error.statusCode : 500;
  if (status >= 400 && status < 500) {
    return { status, code: STATUS_CODES[status] ?? 'ERR_BAD_REQUEST', message: 'bad request' };
  }
  return { status: 500, code: 'ERR_INTERNAL', message: 'internal server error' };
}
