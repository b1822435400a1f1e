import { type CdnConfig, DEFAULT_LEASE_SECONDS } from '@sluice/protocol';
import { type BindingPolicy, resolveBindingPolicy } from '../auth/driftPolicy.js';
import { type LoginLimits, resolveLoginLimits } from '../auth/loginLimiter.js';
import {
  DEFAULT_SCRYPT_PARAMS,
  type ScryptParams,
  validateScryptParams,
} from '../auth/passwordHash.js';
import type { TokenOptions } from '../auth/tokens.js';
import { type ResolvedCdnConfig, resolveCdnConfig } from '../cdnConfig/resolveCdnConfig.js';
import { invalidSetting } from '../errors.js';
import { checkMetricsToken } from '../ops/metricsToken.js';
import { checkReadinessChecks, type ReadinessCheck } from '../ops/readiness.js';
import { DEFAULT_BIG_PART_LIMIT } from '../resources/limits.js';
import type { S3StorageConfig } from '../stores/s3PartStore.js';
import { checkTls, type TlsOptions } from './tls.js';
import { resolveTransferTimeouts, type TransferTimeouts } from './transferTimeouts.js';
import { checkTrustProxy, type TrustProxy } from './trustProxy.js';

/** Largest JSON body accepted by default (user administration and login need far less). */
export const DEFAULT_BODY_LIMIT = 64 * 1024;

/** How long `close()` lets in-flight requests run by default before it cuts them off. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 30_000;

/** The levels of `logger.level`, most severe first; `silent` logs nothing. */
import { LOG_LEVELS } from './logLevels.js';

export { LOG_LEVELS };
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  /**
   * Default `info`: one line per request (big-part ranges at `debug`, docs/OPERATIONS.md) and the
   * events of interest.
   */
  level?: LogLevel;
  /** Where JSON log lines go (default stdout). */
  stream?: { write(line: string): unknown };
}

export interface ServerOptions {
  /**
   * The data directory (created 0700): the embedded default's database and blobs, and always the
   * server's keys (`master.key`, `jwt-signing-key.json`; the same files on every instance).
   */
  dataDir: string;
  /**
   * PostgreSQL as the system of record (`postgres://user@host:port/db`), for any number of
   * instances; needs S3 `storage` (blobs in the data directory would be one instance's alone).
   */
  databaseUrl?: string;
  /** Structured JSON logs (pino) with secrets redacted; off by default. */
  logger?: boolean | LoggerOptions;
  /** Serve HTTPS with this certificate and key (PEM) instead of plain HTTP. */
  tls?: TlsOptions;
  /** `iss` of the tokens this server signs and accepts (default `sluice`). */
  issuer?: string;
  /** `aud` of the tokens this server signs and accepts (default `sluice-api`). */
  audience?: string;
  accessTokenTtlSeconds?: number;
  refreshTokenTtlSeconds?: number;
  /** Maximum request body in bytes (default 64 KiB); larger bodies get 413. */
  bodyLimit?: number;
  /** Password-guessing limits, each rule over its default (docs/SECURITY.md, "Login limits"). */
  loginLimits?: Partial<LoginLimits>;
  /** scrypt parameters for new password hashes (default N=2^15, r=8, p=1). */
  scrypt?: ScryptParams;
  /** Largest big part an upload may carry, in bytes (default 64 GiB; small parts: 16 MiB). */
  bigPartLimit?: number;
  /**
   * Retention: after an upload, the versions of that resource beyond the newest `keepVersions`
   * are deleted, parts included, except the released one (default 0: keep every version).
   */
  keepVersions?: number;
  /**
   * Which proxies' `X-Forwarded-For` names the client (the address the login limits key on):
   * false (default: none, the socket's address counts), true (any: only behind a proxy that
   * overwrites the header), or the proxies' addresses and CIDRs (a comma list or an array;
   * `loopback`, `linklocal` and `uniquelocal` name those ranges).
   */
  trustProxy?: TrustProxy;
  /**
   * How long `close()` lets in-flight requests (uploads, big-part downloads) run before it
   * destroys their connections, in ms (default 30 s).
   */
  shutdownGraceMs?: number;
  /**
   * How often the sweeper removes what crashed uploads and failed deletions left (ms, default
   * 1 h; 0: never). One instance sweeps at a time (docs/OPERATIONS.md).
   */
  sweepIntervalMs?: number;
  /** Only what is older than this is swept (ms, default 24 h): longer than any upload takes. */
  sweepGraceMs?: number;
  /**
   * How long `close()` keeps serving after `GET /readyz` turned 503, in ms (default 0), so a
   * balancer stops sending traffic before the server stops accepting it. Then the grace period.
   */
  drainDelayMs?: number;
  /**
   * What `GET /readyz` waits on besides the part storage (`storage`, always checked), e.g. a
   * database: `{ name: 'database', check: (signal) => pool.ping(signal) }`.
   */
  readinessChecks?: readonly ReadinessCheck[];
  /** When set, `GET /metrics` requires `Authorization: Bearer <metricsToken>`; else it is open. */
  metricsToken?: string;
  /**
   * Also export prom-client's process metrics (CPU, memory, event loop, GC) on `GET /metrics`
   * (default false: they observe the whole process, so only one server per process should).
   */
  processMetrics?: boolean;
  /**
   * How long the server waits on slow clients, each over its default: the request head, idle
   * keep-alive connections, responses the client stopped reading, and the minimum rate of request
   * bodies after a grace period (docs/SECURITY.md, "Slow clients").
   */
  timeouts?: Partial<TransferTimeouts>;
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
  /**
   * How far a device may drift from its binding, each over its default: `maxDrift` bound factors
   * may change or go missing (1), at least `minMatch` must match (3, never fewer), and after a
   * drift another is refused for `driftCooldownMs` (24 h). docs/SECURITY.md, "Device binding".
   */
  deviceBinding?: Partial<BindingPolicy>;
  /**
   * How long the offline lease sent with each envelope lets a device open that version without
   * the server, in seconds (default 7 days; 0: no offline use). docs/SECURITY.md, "Offline use".
   */
  offlineLeaseSeconds?: number;
}

/** The options checked once, with their defaults, and the environment switches read once. */
export interface ServerSettings {
  dataDir: string;
  databaseUrl: string | undefined;
  logger: ServerOptions['logger'];
  tls: TlsOptions | undefined;
  tokens: TokenOptions;
  bodyLimit: number;
  loginLimits: LoginLimits;
  scrypt: ScryptParams;
  bigPartLimit: number;
  /** 0: keep every version. */
  keepVersions: number;
  trustProxy: TrustProxy;
  shutdownGraceMs: number;
  sweepIntervalMs: number;
  sweepGraceMs: number;
  drainDelayMs: number;
  readinessChecks: readonly ReadinessCheck[];
  metricsToken: string | undefined;
  processMetrics: boolean;
  timeouts: TransferTimeouts;
  cdn: ResolvedCdnConfig;
  storage: { kind: 'file' } | S3StorageConfig;
  deviceBinding: BindingPolicy;
  offlineLeaseSeconds: number;
  /** On unless `SLUICE_ENVELOPE_CACHE=off` (bench:api measures both). */
  envelopeCache: boolean;
  /** `SLUICE_SERVER_TIMING=1`: the envelope route reports its steps in `Server-Timing`. */
  serverTiming: boolean;
}

/**
 * Checks the options (bad ones throw SluiceError ERR_INVALID_ARG naming the `field`, or a
 * RangeError for scrypt) before anything is opened, and reads the environment switches.
 */
export function resolveSettings(
  options: ServerOptions,
  env: NodeJS.ProcessEnv = process.env,
): ServerSettings {
  const scrypt = options.scrypt ?? DEFAULT_SCRYPT_PARAMS;
  validateScryptParams(scrypt);
  const cdn = resolveCdnConfig(options.cdn);
  const storageKind: unknown = options.storage?.kind ?? 'file';
  if (storageKind !== 'file' && storageKind !== 's3') {
    throw invalidSetting('storage.kind', `must be 'file' or 's3'`);
  }
  const bigPartLimit = options.bigPartLimit ?? DEFAULT_BIG_PART_LIMIT;
  if (!Number.isSafeInteger(bigPartLimit) || bigPartLimit < 1) {
    throw invalidSetting('bigPartLimit', `must be a positive integer, got ${bigPartLimit}`);
  }
  const keepVersions = options.keepVersions ?? 0;
  if (!Number.isSafeInteger(keepVersions) || keepVersions < 0) {
    throw invalidSetting('keepVersions', `must be an integer ≥ 0, got ${keepVersions}`);
  }
  const shutdownGraceMs = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
  milliseconds('shutdownGraceMs', shutdownGraceMs);
  const sweepIntervalMs = options.sweepIntervalMs ?? 60 * 60 * 1000;
  milliseconds('sweepIntervalMs', sweepIntervalMs);
  const sweepGraceMs = options.sweepGraceMs ?? 24 * 60 * 60 * 1000;
  milliseconds('sweepGraceMs', sweepGraceMs);
  const drainDelayMs = options.drainDelayMs ?? 0;
  milliseconds('drainDelayMs', drainDelayMs);
  const databaseUrl = checkDatabaseUrl(options.databaseUrl);
  if (databaseUrl !== undefined && storageKind !== 's3') {
    throw invalidSetting(
      'storage',
      'a database needs S3 storage: with any number of instances, parts kept in one ' +
        "instance's data directory would be missing on the others (set storage to an S3 bucket)",
    );
  }
  return {
    dataDir: options.dataDir,
    databaseUrl,
    logger: checkLogger(options.logger),
    tls: checkTls(options.tls),
    tokens: {
      issuer: options.issuer ?? 'sluice',
      audience: options.audience ?? 'sluice-api',
      accessTokenTtlSeconds: options.accessTokenTtlSeconds,
      refreshTokenTtlSeconds: options.refreshTokenTtlSeconds,
    },
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    loginLimits: resolveLoginLimits(options.loginLimits),
    scrypt,
    bigPartLimit,
    keepVersions,
    trustProxy: checkTrustProxy(options.trustProxy ?? false),
    shutdownGraceMs,
    sweepIntervalMs,
    sweepGraceMs,
    drainDelayMs,
    readinessChecks: checkReadinessChecks(options.readinessChecks ?? [], ['storage', 'database']),
    metricsToken: checkMetricsToken(options.metricsToken),
    processMetrics: options.processMetrics === true,
    timeouts: resolveTransferTimeouts(options.timeouts),
    cdn,
    storage: options.storage ?? { kind: 'file' },
    deviceBinding: resolveBindingPolicy(options.deviceBinding),
    offlineLeaseSeconds: leaseSeconds(options.offlineLeaseSeconds),
    envelopeCache: env.SLUICE_ENVELOPE_CACHE !== 'off',
    serverTiming: env.SLUICE_SERVER_TIMING === '1',
  };
}

/** Whole seconds ≥ 0, at most ~10 years (a lease past that is no lease). */
function leaseSeconds(value: number | undefined): number {
  const v = value ?? DEFAULT_LEASE_SECONDS;
  if (!Number.isSafeInteger(v) || v < 0 || v > 10 * 366 * 86400) {
    throw invalidSetting(
      'offlineLeaseSeconds',
      `must be whole seconds from 0 to 10 years, got ${v}`,
    );
  }
  return v;
}

/** A `postgres://` or `postgresql://` URL, or undefined; never echoes it (it may hold a password). */
function checkDatabaseUrl(url: unknown): string | undefined {
  if (url === undefined) return undefined;
  let protocol = '';
  try {
    protocol = new URL(String(url)).protocol;
  } catch {
    // reported below
  }
  if (typeof url !== 'string' || (protocol !== 'postgres:' && protocol !== 'postgresql:')) {
    throw invalidSetting('databaseUrl', 'must be a postgres:// URL');
  }
  return url;
}

/** `logger.level` must be one of pino's levels. */
function checkLogger(logger: ServerOptions['logger']): ServerOptions['logger'] {
  const level: unknown = typeof logger === 'object' ? logger.level : undefined;
  if (level !== undefined && !LOG_LEVELS.includes(level as LogLevel)) {
    throw invalidSetting('logger.level', `must be one of ${LOG_LEVELS.join(', ')}`);
  }
  return logger;
}

/** A duration option must be an integer number of ms ≥ 0. */
function milliseconds(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw invalidSetting(field, `must be an integer ≥ 0, got ${value}`);
  }
}
