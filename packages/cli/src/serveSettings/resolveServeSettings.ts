import { SluiceError } from '@sluice/core';
import {
  type CdnConfig,
  DEFAULT_SCRYPT_PARAMS,
  type LogLevel,
  type ScryptParams,
  type ServerOptions,
  validateScryptParams,
} from '@sluice/server';
import { bindingSettings } from './bindingSettings.js';
import { objectAt } from './configFile.js';
import { keepVersions } from './keepVersions.js';
import { s3Cdn } from './s3Cdn.js';
import { type StorageSettings, s3Storage } from './s3Storage.js';
import { SERVE_ENV } from './serveEnv.js';
import { type Candidate, SettingSources, type SettingsSources } from './settingSources.js';
import { tlsFiles } from './tlsFiles.js';

/** What `sluice serve` passes to createServer (and initAdmin) besides the data directory. */
export interface ServeSettings {
  storage?: StorageSettings;
  cdn?: CdnConfig;
  shutdownGraceMs?: number;
  /** How long a closing server stays up answering 503 on `/readyz` (`--drain-delay`). */
  drainDelayMs?: number;
  /** The bearer token `GET /metrics` requires (`SLUICE_METRICS_TOKEN`; never a flag or the file). */
  metricsToken?: string;
  /** Password hash cost, from the file's `passwordHash` (createServer checks it is safe). */
  scrypt?: ScryptParams;
  /** Whose `X-Forwarded-For` to believe (`--trust-proxy`, or the file's `trustProxy`). */
  trustProxy?: ServerOptions['trustProxy'];
  /** How long the server waits on slow clients (the file's `timeouts`, checked by createServer). */
  timeouts?: ServerOptions['timeouts'];
  /** PostgreSQL as the system of record (`--database`, `SLUICE_DATABASE_URL`, `databaseUrl`). */
  databaseUrl?: string;
  /** Serve HTTPS with these PEM contents (`--tls-cert`/`--tls-key`, checked by createServer). */
  tls?: ServerOptions['tls'];
  /** `--log-level`, `SLUICE_LOG_LEVEL` or the file's `logLevel` (checked by createServer). */
  logLevel?: LogLevel;
  /** Drift tolerance of device bindings (`--binding-*`, `SLUICE_BINDING_*`, `deviceBinding`). */
  deviceBinding?: ServerOptions['deviceBinding'];
  /** Retention (`--keep`, `SLUICE_KEEP_VERSIONS`, `keepVersions`; createServer checks it). */
  keepVersions?: number;
  /** The offline lease's length (`--lease-days`, `SLUICE_LEASE_DAYS`, `leaseDays`; 0: none). */
  offlineLeaseSeconds?: number;
  /** Where each setting came from (`storage.bucket` → `SLUICE_S3_BUCKET`), for error messages. */
  origins: Map<string, string>;
}

/**
 * Merges the config file, the environment and the flags (in increasing precedence) into
 * createServer's `storage`, `cdn`, `shutdownGraceMs`, `drainDelayMs`, `scrypt`, … . Small parts go to S3 once a
 * storage bucket is named, big parts once a CDN bucket is; endpoint, region and the read-write
 * keys are shared by both. Values are checked by createServer; this only refuses what cannot be
 * merged.
 */
export function resolveServeSettings(sources: SettingsSources): ServeSettings {
  const src = new SettingSources(sources);
  const storage = s3Storage(src);
  const cdn = s3Cdn(src, storage);
  refuseUnused(src, storage, cdn);
  refuseMissingKeys(src, storage, cdn);
  return {
    storage,
    cdn,
    shutdownGraceMs: seconds(src, 'shutdownGraceMs', '--shutdown-grace', src.flags.shutdownGrace),
    drainDelayMs: seconds(src, 'drainDelayMs', '--drain-delay', src.flags.drainDelay),
    metricsToken: metricsToken(src),
    scrypt: passwordHash(src),
    trustProxy: trustProxy(src),
    timeouts: timeouts(src),
    databaseUrl: databaseUrl(src),
    tls: tlsFiles(src),
    logLevel: src.pick(
      'logger.level',
      [src.flags.logLevel, '--log-level'],
      src.fromEnv(SERVE_ENV.logLevel),
      src.inFile(src.file.logLevel),
    ) as LogLevel | undefined,
    deviceBinding: bindingSettings(src),
    keepVersions: keepVersions(src),
    offlineLeaseSeconds: leaseDays(src),
    origins: src.origins,
  };
}

/** `--lease-days`, else `SLUICE_LEASE_DAYS`, else the file's `leaseDays`: days, as seconds. */
function leaseDays(src: SettingSources): number | undefined {
  const given = src.pick(
    'offlineLeaseSeconds',
    [src.flags.leaseDays, '--lease-days'],
    src.fromEnv(SERVE_ENV.leaseDays),
    src.inFile(src.file.leaseDays),
  );
  if (given === undefined) return undefined;
  const text = String(given);
  const days = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !Number.isFinite(days) || days > 3660) {
    const origin = src.origins.get('offlineLeaseSeconds') ?? 'leaseDays';
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `${origin} must be a number of days from 0 to 3660 (0: no offline use), got '${text}'`,
      { field: 'offlineLeaseSeconds' },
    );
  }
  return Math.round(days * 86400);
}

/**
 * `--database`, else `SLUICE_DATABASE_URL`, else the file's `databaseUrl`. A password belongs in
 * the environment or the file (or PGPASSWORD), never in a flag that every `ps` shows.
 */
function databaseUrl(src: SettingSources): string | undefined {
  const flag = src.flags.database;
  if (flag !== undefined) {
    let password = '';
    try {
      password = new URL(flag).password;
    } catch {
      // createServer names a malformed URL
    }
    if (password !== '') {
      throw new SluiceError(
        'ERR_INVALID_ARG',
        `--database must not carry a password (any process list shows it): put the URL in ${SERVE_ENV.database} or the config file's databaseUrl, or the password in PGPASSWORD`,
        { field: 'databaseUrl' },
      );
    }
  }
  const url = src.pick(
    'databaseUrl',
    [flag, '--database'],
    src.fromEnv(SERVE_ENV.database),
    src.inFile(src.file.databaseUrl),
  );
  return url === undefined ? undefined : String(url);
}

/** A setting that nothing uses is a typo or a forgotten bucket: say so rather than ignore it. */
function refuseUnused(
  src: SettingSources,
  storage: StorageSettings | undefined,
  cdn: CdnConfig | undefined,
): void {
  const { flags } = src;
  const unused = (candidates: Candidate[], wanted: string) => {
    const stray = candidates.find(([v]) => v !== undefined);
    if (stray !== undefined) {
      throw new SluiceError('ERR_INVALID_ARG', `${stray[1]} is set but no bucket is: ${wanted}`);
    }
  };
  const bucketFlags = '(or --s3-bucket / --cdn-bucket)';
  if (storage?.kind !== 's3') {
    unused(
      [[flags.s3Prefix, '--s3-prefix'], src.fromEnv(SERVE_ENV.prefix)],
      `set ${SERVE_ENV.bucket} ${bucketFlags}`,
    );
  }
  if (cdn?.kind !== 's3') {
    unused(
      [
        [flags.cdnEndpoint, '--cdn-endpoint'],
        src.fromEnv(SERVE_ENV.cdnEndpoint),
        [flags.cdnPrefix, '--cdn-prefix'],
        src.fromEnv(SERVE_ENV.cdnPrefix),
        src.readKeys,
      ],
      `set ${SERVE_ENV.cdnBucket} ${bucketFlags}`,
    );
  }
  if (storage?.kind !== 's3' && cdn?.kind !== 's3') {
    unused(
      [...src.endpoint, ...src.region, src.rwKeys],
      `name one with ${SERVE_ENV.bucket} (small parts) and/or ${SERVE_ENV.cdnBucket} (big parts) ${bucketFlags}`,
    );
  }
}

function refuseMissingKeys(
  src: SettingSources,
  storage: StorageSettings | undefined,
  cdn: CdnConfig | undefined,
): void {
  const missing = (field: string, what: string, envOrigin: string) =>
    new SluiceError(
      'ERR_INVALID_ARG',
      `${field}${what} is missing: set ${envOrigin} or ${field} in the config file`,
    );
  if (cdn?.kind === 's3' && cdn.downloader === undefined) {
    // Never fall back to the read-write keys: every device user would get them.
    throw missing('cdn.downloader', ' (read-only keys for devices)', src.readKeys[1]);
  }
  if (cdn?.kind === 's3' && cdn.uploader === undefined) {
    throw missing('cdn.uploader', ' (read-write keys)', src.rwKeys[1]);
  }
  if (storage?.kind === 's3' && storage.credentials === undefined) {
    throw missing('storage.credentials', '', src.rwKeys[1]);
  }
}

/** A duration: the flag in seconds (as typed), else the file's `field` in ms (unchecked). */
function seconds(
  src: SettingSources,
  field: 'shutdownGraceMs' | 'drainDelayMs',
  flag: string,
  text: string | undefined,
): number | undefined {
  if (text === undefined) {
    const fromFile = src.file[field] as number | undefined;
    if (fromFile !== undefined) src.origins.set(field, src.fileOrigin);
    return fromFile;
  }
  src.origins.set(field, flag);
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !Number.isFinite(value)) {
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `${flag} must be a number of seconds ≥ 0, got '${text}'`,
    );
  }
  return Math.round(value * 1000);
}

/** `SLUICE_METRICS_TOKEN`, unchecked: createServer refuses a weak one (without echoing it). */
function metricsToken(src: SettingSources): string | undefined {
  const [token, origin] = src.fromEnv(SERVE_ENV.metricsToken);
  if (token !== undefined) src.origins.set('metricsToken', origin);
  return token as string | undefined;
}

/** The file's `timeouts`, unchecked: createServer names a bad value. */
function timeouts(src: SettingSources): ServerOptions['timeouts'] {
  const given = objectAt(src.file, 'timeouts');
  if (given !== undefined) src.origins.set('timeouts', src.fileOrigin);
  return given as ServerOptions['timeouts'];
}

/** `--trust-proxy`, else the file's `trustProxy`, unchecked: createServer names a bad one. */
function trustProxy(src: SettingSources): ServerOptions['trustProxy'] {
  if (src.flags.trustProxy !== undefined) {
    src.origins.set('trustProxy', '--trust-proxy');
    return src.flags.trustProxy;
  }
  const fromFile = src.file.trustProxy as ServerOptions['trustProxy'];
  if (fromFile !== undefined) src.origins.set('trustProxy', src.fileOrigin);
  return fromFile;
}

/**
 * The file's `passwordHash: {logN}` over the default scrypt cost, checked by the server's own
 * rule before anything is created with it.
 */
function passwordHash(src: SettingSources): ScryptParams | undefined {
  const given = objectAt(src.file, 'passwordHash');
  if (given?.logN === undefined) return undefined;
  const scrypt = { ...DEFAULT_SCRYPT_PARAMS, logN: given.logN as number };
  try {
    validateScryptParams(scrypt);
  } catch (e) {
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `passwordHash.logN: ${(e as Error).message} (from ${src.fileOrigin})`,
      { cause: e, field: 'passwordHash.logN' },
    );
  }
  src.origins.set('scrypt', src.fileOrigin);
  return scrypt;
}
