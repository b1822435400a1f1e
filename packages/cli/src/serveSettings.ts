import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { isSluiceError, SluiceError } from '@sluice/core';
import type { CdnConfig, S3StorageConfig } from '@sluice/server';

/** What `sluice serve` passes to createServer besides the data directory. */
export interface ServeSettings {
  storage?: { kind: 'file' } | S3StorageConfig;
  cdn?: CdnConfig;
  shutdownGraceMs?: number;
  /** Where each setting came from (`storage.bucket` → `SLUICE_S3_BUCKET`), for error messages. */
  origins: Map<string, string>;
}

/** The non-secret flags of `sluice serve` that override the environment and the config file. */
export interface ServeFlags {
  s3Endpoint?: string;
  s3Region?: string;
  s3Bucket?: string;
  s3Prefix?: string;
  cdnEndpoint?: string;
  cdnBucket?: string;
  cdnPrefix?: string;
  /** Seconds, as typed. */
  shutdownGrace?: string;
}

export interface SettingsSources {
  /** `--config FILE`: JSON `{storage, cdn, shutdownGraceMs}` as createServer takes them. */
  file?: string;
  env: NodeJS.ProcessEnv;
  flags: ServeFlags;
}

/** The environment variables `sluice serve` reads, for its help. */
export const SERVE_ENV = {
  endpoint: 'SLUICE_S3_ENDPOINT',
  region: 'SLUICE_S3_REGION',
  bucket: 'SLUICE_S3_BUCKET',
  prefix: 'SLUICE_S3_PREFIX',
  accessKey: 'SLUICE_S3_ACCESS_KEY',
  secretKey: 'SLUICE_S3_SECRET_KEY',
  cdnEndpoint: 'SLUICE_CDN_ENDPOINT',
  cdnBucket: 'SLUICE_CDN_BUCKET',
  cdnPrefix: 'SLUICE_CDN_PREFIX',
  readAccessKey: 'SLUICE_CDN_READ_ACCESS_KEY',
  readSecretKey: 'SLUICE_CDN_READ_SECRET_KEY',
} as const;

/** Region when none is given: what Ceph RGW and MinIO accept by default. */
export const DEFAULT_REGION = 'us-east-1';

const TOP_KEYS = ['storage', 'cdn', 'shutdownGraceMs'];
const STORAGE_KEYS = ['kind', 'endpoint', 'region', 'bucket', 'prefix', 'credentials'];
const CDN_KEYS = [
  'kind',
  'endpoint',
  'region',
  'bucket',
  'prefix',
  'chunkSize',
  'downloader',
  'uploader',
];

type Settings = Record<string, unknown>;

/**
 * Merges the config file, the environment and the flags (in increasing precedence) into
 * createServer's `storage`, `cdn` and `shutdownGraceMs`. Small parts go to S3 once a storage
 * bucket is named, big parts once a CDN bucket is; endpoint, region and the read-write keys are
 * shared by both. Values are checked by createServer; this only refuses what cannot be merged.
 */
export function resolveServeSettings(sources: SettingsSources): ServeSettings {
  const origins = new Map<string, string>();
  const file = sources.file === undefined ? {} : readServeConfigFile(sources.file);
  const fileOrigin = `--config ${sources.file}`;
  const { env, flags } = sources;
  const fromEnv = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  /** The first defined value of [value, origin] pairs, its origin recorded under `field`. */
  const pick = (field: string, ...candidates: [unknown, string][]): unknown => {
    for (const [value, origin] of candidates) {
      if (value !== undefined) {
        origins.set(field, origin);
        return value;
      }
    }
    return undefined;
  };
  const envPair = (idName: string, secretName: string) => {
    const accessKeyId = fromEnv(idName);
    const secretAccessKey = fromEnv(secretName);
    if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
      throw new SluiceError('ERR_INVALID_ARG', `${idName} and ${secretName} must be set together`);
    }
    return accessKeyId === undefined || secretAccessKey === undefined
      ? undefined
      : { accessKeyId, secretAccessKey };
  };
  const rwKeys = envPair(SERVE_ENV.accessKey, SERVE_ENV.secretKey);
  const readKeys = envPair(SERVE_ENV.readAccessKey, SERVE_ENV.readSecretKey);
  const rwOrigin = `${SERVE_ENV.accessKey}/${SERVE_ENV.secretKey}`;
  const readOrigin = `${SERVE_ENV.readAccessKey}/${SERVE_ENV.readSecretKey}`;

  const fileStorage = objectAt(file, 'storage');
  const fileCdn = objectAt(file, 'cdn');
  const endpoint: [unknown, string][] = [
    [flags.s3Endpoint, '--s3-endpoint'],
    [fromEnv(SERVE_ENV.endpoint), SERVE_ENV.endpoint],
  ];
  const region: [unknown, string][] = [
    [flags.s3Region, '--s3-region'],
    [fromEnv(SERVE_ENV.region), SERVE_ENV.region],
  ];

  let storage: ServeSettings['storage'];
  const storageBucket = pick(
    'storage.bucket',
    [flags.s3Bucket, '--s3-bucket'],
    [fromEnv(SERVE_ENV.bucket), SERVE_ENV.bucket],
    [fileStorage?.kind === 's3' ? fileStorage.bucket : undefined, fileOrigin],
  );
  if (storageBucket !== undefined) {
    const s = fileStorage?.kind === 's3' ? fileStorage : {};
    storage = withoutUndefined({
      kind: 's3',
      endpoint: pick('storage.endpoint', ...endpoint, [s.endpoint, fileOrigin]),
      region: pick(
        'storage.region',
        ...region,
        [s.region, fileOrigin],
        [DEFAULT_REGION, 'default'],
      ),
      bucket: storageBucket,
      prefix: pick(
        'storage.prefix',
        [flags.s3Prefix, '--s3-prefix'],
        [fromEnv(SERVE_ENV.prefix), SERVE_ENV.prefix],
        [s.prefix, fileOrigin],
      ),
      credentials: pick('storage.credentials', [rwKeys, rwOrigin], [s.credentials, fileOrigin]),
    }) as unknown as S3StorageConfig;
  } else if (fileStorage !== undefined) {
    storage = fileStorage as { kind: 'file' };
    origins.set('storage', fileOrigin);
  }

  let cdn: CdnConfig | undefined;
  const cdnBucket = pick(
    'cdn.bucket',
    [flags.cdnBucket, '--cdn-bucket'],
    [fromEnv(SERVE_ENV.cdnBucket), SERVE_ENV.cdnBucket],
    [fileCdn?.kind === 's3' ? fileCdn.bucket : undefined, fileOrigin],
  );
  if (cdnBucket !== undefined) {
    const c = fileCdn?.kind === 's3' ? fileCdn : {};
    const s3Storage = storage?.kind === 's3' ? storage : undefined;
    cdn = withoutUndefined({
      kind: 's3',
      endpoint: pick(
        'cdn.endpoint',
        [flags.cdnEndpoint, '--cdn-endpoint'],
        [fromEnv(SERVE_ENV.cdnEndpoint), SERVE_ENV.cdnEndpoint],
        ...endpoint,
        [c.endpoint, fileOrigin],
        [s3Storage?.endpoint, origins.get('storage.endpoint') ?? fileOrigin],
      ),
      region: pick(
        'cdn.region',
        ...region,
        [c.region, fileOrigin],
        [s3Storage?.region, origins.get('storage.region') ?? fileOrigin],
        [DEFAULT_REGION, 'default'],
      ),
      bucket: cdnBucket,
      prefix: pick(
        'cdn.prefix',
        [flags.cdnPrefix, '--cdn-prefix'],
        [fromEnv(SERVE_ENV.cdnPrefix), SERVE_ENV.cdnPrefix],
        [c.prefix, fileOrigin],
      ),
      chunkSize: pick('cdn.chunkSize', [c.chunkSize, fileOrigin]),
      downloader: pick('cdn.downloader', [readKeys, readOrigin], [c.downloader, fileOrigin]),
      uploader: pick('cdn.uploader', [rwKeys, rwOrigin], [c.uploader, fileOrigin]),
    }) as unknown as CdnConfig;
  } else if (fileCdn !== undefined) {
    cdn = fileCdn as unknown as CdnConfig;
    origins.set('cdn', fileOrigin);
  }

  // A setting that nothing uses is a typo or a forgotten bucket: say so rather than ignore it.
  const unused = (candidates: [unknown, string][], wanted: string) => {
    const stray = candidates.find(([v]) => v !== undefined);
    if (stray !== undefined) {
      throw new SluiceError('ERR_INVALID_ARG', `${stray[1]} is set but no bucket is: ${wanted}`);
    }
  };
  const bucketFlags = '(or --s3-bucket / --cdn-bucket)';
  if (storage?.kind !== 's3') {
    unused(
      [
        [flags.s3Prefix, '--s3-prefix'],
        [fromEnv(SERVE_ENV.prefix), SERVE_ENV.prefix],
      ],
      `set ${SERVE_ENV.bucket} ${bucketFlags}`,
    );
  }
  if (cdn?.kind !== 's3') {
    unused(
      [
        [flags.cdnEndpoint, '--cdn-endpoint'],
        [fromEnv(SERVE_ENV.cdnEndpoint), SERVE_ENV.cdnEndpoint],
        [flags.cdnPrefix, '--cdn-prefix'],
        [fromEnv(SERVE_ENV.cdnPrefix), SERVE_ENV.cdnPrefix],
        [readKeys, readOrigin],
      ],
      `set ${SERVE_ENV.cdnBucket} ${bucketFlags}`,
    );
  }
  if (storage?.kind !== 's3' && cdn?.kind !== 's3') {
    unused(
      [...endpoint, ...region, [rwKeys, rwOrigin]],
      `name one with ${SERVE_ENV.bucket} (small parts) and/or ${SERVE_ENV.cdnBucket} (big parts) ${bucketFlags}`,
    );
  }
  if (cdn?.kind === 's3' && cdn.downloader === undefined) {
    // Never fall back to the read-write keys: every device user would get them.
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `cdn.downloader (read-only keys for devices) is missing: set ${readOrigin} or cdn.downloader in the config file`,
    );
  }
  if (cdn?.kind === 's3' && cdn.uploader === undefined) {
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `cdn.uploader (read-write keys) is missing: set ${rwOrigin} or cdn.uploader in the config file`,
    );
  }
  if (storage?.kind === 's3' && storage.credentials === undefined) {
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `storage.credentials is missing: set ${rwOrigin} or storage.credentials in the config file`,
    );
  }

  const shutdownGraceMs =
    flags.shutdownGrace !== undefined
      ? graceMs(flags.shutdownGrace)
      : (file.shutdownGraceMs as number | undefined);
  if (flags.shutdownGrace !== undefined) origins.set('shutdownGraceMs', '--shutdown-grace');
  else if (shutdownGraceMs !== undefined) origins.set('shutdownGraceMs', fileOrigin);

  return {
    ...(storage === undefined ? {} : { storage }),
    ...(cdn === undefined ? {} : { cdn }),
    ...(shutdownGraceMs === undefined ? {} : { shutdownGraceMs }),
    origins,
  };
}

/**
 * Reads `--config FILE`: a JSON object with `storage`, `cdn` and `shutdownGraceMs` only. A file
 * holding a secret key that group or others may read is refused (like ssh with a private key).
 */
export function readServeConfigFile(path: string): Settings {
  let text: string;
  let mode: number;
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const info = fstatSync(fd);
    if (!info.isFile()) {
      throw new SluiceError('ERR_INVALID_ARG', `config file ${path} is not a regular file`);
    }
    mode = info.mode & 0o777;
    text = readFileSync(fd, 'utf8');
  } catch (e) {
    if (e instanceof SluiceError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new SluiceError('ERR_IO', `cannot read config file ${path}${code ? `: ${code}` : ''}`, {
      cause: e,
      path,
    });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    // JSON.parse's message may quote the file (and a key in it): give the position only.
    const at = /position (\d+)/.exec((e as Error).message)?.[1];
    const where = at === undefined ? '' : ` at ${lineColumn(text, Number(at))}`;
    throw new SluiceError('ERR_INVALID_ARG', `config file ${path} is not valid JSON${where}`, {
      path,
    });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new SluiceError('ERR_INVALID_ARG', `config file ${path} must hold a JSON object`);
  }
  const settings = parsed as Settings;
  checkKeys(settings, TOP_KEYS, '', path);
  const storage = objectAt(settings, 'storage', path);
  if (storage !== undefined) checkKeys(storage, STORAGE_KEYS, 'storage.', path);
  const cdn = objectAt(settings, 'cdn', path);
  if (cdn !== undefined) checkKeys(cdn, CDN_KEYS, 'cdn.', path);
  if (process.platform !== 'win32' && (mode & 0o077) !== 0 && holdsSecret(settings)) {
    throw new SluiceError(
      'ERR_INSECURE_FILE',
      `config file ${path} holds secret keys and is accessible by group or others (mode ` +
        `${mode.toString(8).padStart(4, '0')}): run \`chmod 600 ${path}\`, and change the keys if ` +
        'someone else may have read them',
      { path },
    );
  }
  return settings;
}

/** The `storage` or `cdn` object of the settings, refused when it is there but not an object. */
function objectAt(settings: Settings, key: string, path?: string): Settings | undefined {
  const v = settings[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new SluiceError('ERR_INVALID_ARG', `${key} must be an object (config file ${path})`);
  }
  return v as Settings;
}

function checkKeys(o: Settings, known: string[], at: string, path: string): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) {
      throw new SluiceError(
        'ERR_INVALID_ARG',
        `config file ${path}: unknown setting '${at}${k}' (known: ${known.map((n) => at + n).join(', ')})`,
      );
    }
  }
}

function withoutUndefined(o: Settings): Settings {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function holdsSecret(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  return Object.entries(v).some(([k, inner]) => k === 'secretAccessKey' || holdsSecret(inner));
}

function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset).split('\n');
  return `line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
}

function graceMs(text: string): number {
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !Number.isFinite(seconds)) {
    throw new SluiceError(
      'ERR_INVALID_ARG',
      `--shutdown-grace must be a number of seconds ≥ 0, got '${text}'`,
    );
  }
  return Math.round(seconds * 1000);
}

/**
 * A createServer error about a setting (ERR_INVALID_ARG naming its `field`, e.g. `storage.bucket`),
 * with where that setting came from appended; anything else unchanged. Messages from createServer
 * never hold a key.
 */
export function explainSettingError(err: unknown, origins: Map<string, string>): unknown {
  if (!isSluiceError(err, 'ERR_INVALID_ARG') || err.field === undefined) return err;
  const { field } = err;
  let origin: string | undefined;
  for (
    let f = field;
    f !== '' && origin === undefined;
    f = f.slice(0, Math.max(0, f.lastIndexOf('.')))
  ) {
    origin = origins.get(f);
  }
  const hint = HINTS[field];
  const where =
    origin !== undefined ? ` (from ${origin})` : hint !== undefined ? ` (set it with ${hint})` : '';
  return new SluiceError('ERR_INVALID_ARG', `${err.message}${where}`, { cause: err, field });
}

/** Where a setting that is missing altogether can be given. */
const HINTS: Record<string, string> = {
  'storage.endpoint': `--s3-endpoint, ${SERVE_ENV.endpoint} or storage.endpoint in --config`,
  'cdn.endpoint': `--cdn-endpoint, ${SERVE_ENV.cdnEndpoint}, ${SERVE_ENV.endpoint} or cdn.endpoint in --config`,
  'storage.bucket': `--s3-bucket, ${SERVE_ENV.bucket} or storage.bucket in --config`,
  'cdn.bucket': `--cdn-bucket, ${SERVE_ENV.cdnBucket} or cdn.bucket in --config`,
};

/** Where small and big parts go, for the log on stderr: endpoints and buckets, never keys. */
export function describeStores(settings: ServeSettings, dataDir: string): string[] {
  const where = (s: { endpoint: string; bucket: string; prefix?: string | undefined }) =>
    `${s.endpoint.replace(/\/+$/, '')} bucket ${s.bucket}${s.prefix ? ` prefix ${s.prefix}/` : ''}`;
  const { storage, cdn } = settings;
  return [
    storage?.kind === 's3'
      ? `small parts: S3 ${where(storage)}`
      : `small parts: ${dataDir}/blobs (file storage)`,
    cdn?.kind === 's3'
      ? `big parts:   S3 CDN ${where(cdn)} (devices get read keys, uploaders write keys)`
      : 'big parts:   this API over HTTP (GET /resources/{folder}/{name}/big)',
  ];
}
