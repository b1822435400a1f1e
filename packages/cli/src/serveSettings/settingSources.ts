import { SluiceError } from '@sluice/core';
import type { S3Credentials } from '@sluice/server';
import { objectAt, readServeConfigFile, type Settings } from './configFile.js';
import { DEFAULT_REGION, SERVE_ENV } from './serveEnv.js';

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
  /** Seconds, as typed. */
  drainDelay?: string;
  /** Proxy addresses and CIDRs, comma-separated, as typed. */
  trustProxy?: string;
  /** `postgres://…` without a password (that goes in the environment or the file). */
  database?: string;
  /** PEM files of the HTTPS certificate and its key. */
  tlsCert?: string;
  tlsKey?: string;
  /** fatal, error, warn, info, debug, trace or silent, as typed. */
  logLevel?: string;
  /** Device binding drift (`--binding-max-drift`, `--binding-min-match`; the cooldown in s). */
  bindingMaxDrift?: string;
  bindingMinMatch?: string;
  bindingDriftCooldown?: string;
  /** Versions kept per resource (`--keep`), as typed. */
  keep?: string;
  /** Days of offline use a lease grants (decimals allowed; 0: none), as typed. */
  leaseDays?: string;
}

export interface SettingsSources {
  /**
   * `--config FILE`: JSON `{storage, cdn, shutdownGraceMs, drainDelayMs, passwordHash, trustProxy,
   * timeouts, databaseUrl, tlsCert, tlsKey, logLevel, keepVersions, leaseDays}`.
   */
  file?: string;
  env: NodeJS.ProcessEnv;
  flags: ServeFlags;
}

/** A value a setting may take and where it comes from (`--s3-bucket`, `SLUICE_S3_BUCKET`…). */
export type Candidate = [value: unknown, origin: string];

/**
 * The three sources of `sluice serve`'s settings (config file, environment, flags), with what
 * several settings share, and the origin of each value taken, for error messages.
 */
export class SettingSources {
  /** Where each setting came from (`storage.bucket` → `SLUICE_S3_BUCKET`). */
  readonly origins = new Map<string, string>();
  readonly file: Settings;
  readonly fileOrigin: string;
  readonly flags: ServeFlags;
  /** The read-write keys (storage, CDN uploads) and the read-only ones (devices). */
  readonly rwKeys: Candidate;
  readonly readKeys: Candidate;
  /** The endpoint and region that the storage and the CDN share. */
  readonly endpoint: Candidate[];
  readonly region: Candidate[];

  constructor(private readonly sources: SettingsSources) {
    this.file = sources.file === undefined ? {} : readServeConfigFile(sources.file);
    this.fileOrigin = `--config ${sources.file}`;
    this.flags = sources.flags;
    this.rwKeys = this.envKeyPair(SERVE_ENV.accessKey, SERVE_ENV.secretKey);
    this.readKeys = this.envKeyPair(SERVE_ENV.readAccessKey, SERVE_ENV.readSecretKey);
    this.endpoint = [[this.flags.s3Endpoint, '--s3-endpoint'], this.fromEnv(SERVE_ENV.endpoint)];
    this.region = [[this.flags.s3Region, '--s3-region'], this.fromEnv(SERVE_ENV.region)];
  }

  /** A variable of the environment, empty counting as unset. */
  fromEnv(name: string): Candidate {
    const v = this.sources.env[name];
    return [v === undefined || v === '' ? undefined : v, name];
  }

  /** The file's `storage` or `cdn` section when it is an S3 one, else an empty one. */
  fileS3(section: 'storage' | 'cdn'): Settings {
    const s = objectAt(this.file, section);
    return s?.kind === 's3' ? s : {};
  }

  /** A value from the file, with the file as its origin. */
  inFile(value: unknown): Candidate {
    return [value, this.fileOrigin];
  }

  /** The default region, when no source names one. */
  get defaultRegion(): Candidate {
    return [DEFAULT_REGION, 'default'];
  }

  /**
   * A setting of `section` that a flag, a variable and the file's S3 section may each give, in
   * that order of precedence (`storage.bucket`: `--s3-bucket`, `SLUICE_S3_BUCKET`, the file).
   */
  layered(section: 'storage' | 'cdn', key: string, flag: Candidate, envName: string): unknown {
    const fileValue = this.fileS3(section)[key];
    return this.pick(`${section}.${key}`, flag, this.fromEnv(envName), this.inFile(fileValue));
  }

  /** The bucket that puts small parts (`storage`) or big parts (`cdn`) on S3, if one is named. */
  bucket(section: 'storage' | 'cdn'): unknown {
    const { flags } = this;
    return section === 'storage'
      ? this.layered(section, 'bucket', [flags.s3Bucket, '--s3-bucket'], SERVE_ENV.bucket)
      : this.layered(section, 'bucket', [flags.cdnBucket, '--cdn-bucket'], SERVE_ENV.cdnBucket);
  }

  /** The file's `storage` or `cdn` as it is, for createServer to check, when no bucket is named. */
  asIs(section: 'storage' | 'cdn'): Settings | undefined {
    const given = objectAt(this.file, section);
    if (given !== undefined) this.origins.set(section, this.fileOrigin);
    return given;
  }

  /** The first defined value among the candidates, its origin recorded under `field`. */
  pick(field: string, ...candidates: Candidate[]): unknown {
    for (const [value, origin] of candidates) {
      if (value !== undefined) {
        this.origins.set(field, origin);
        return value;
      }
    }
    return undefined;
  }

  private envKeyPair(idName: string, secretName: string): Candidate {
    const [accessKeyId] = this.fromEnv(idName);
    const [secretAccessKey] = this.fromEnv(secretName);
    if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
      throw new SluiceError('ERR_INVALID_ARG', `${idName} and ${secretName} must be set together`);
    }
    const pair =
      accessKeyId === undefined ? undefined : ({ accessKeyId, secretAccessKey } as S3Credentials);
    return [pair, `${idName}/${secretName}`];
  }
}

/** The object without its undefined values: createServer sees only what some source set. */
export function withoutUndefined(o: Settings): Settings {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}
