import type { S3Objects } from '@sluice/cdn';
import type { GuardRequest } from './auth/guardRequest.js';
import type { SigningKeys } from './auth/keys.js';
import type { LoginLimiter } from './auth/loginLimiter.js';
import type { ScryptParams } from './auth/passwordHash.js';
import type { TokenService } from './auth/tokens.js';
import type { ResolvedCdnConfig } from './cdn/cdnConfig.js';
import type { MetadataStore } from './stores/metadataStore.js';
import type { PartStorage } from './stores/partStorage.js';

/** What every route module is given: the stores and services of one server. */
export interface ServerContext {
  store: MetadataStore;
  keys: SigningKeys;
  tokens: TokenService;
  guardRequest: GuardRequest;
  limiter: LoginLimiter;
  scrypt: ScryptParams;
  /** A hash of a random password, checked for unknown emails so they cost as much as known ones. */
  dummyPasswordHash: string;
  /** Small and big parts (files in the data directory, or an S3 bucket). */
  blobs: PartStorage;
  /** Encrypts the data keys at rest (`master.key`). */
  masterKey: Buffer;
  /** Largest big part accepted by an upload, in bytes. */
  bigPartLimit: number;
  /** Where clients put and get big parts; the keys only ever leave in a device envelope. */
  cdn: ResolvedCdnConfig;
  /** With an S3 CDN: its bucket, with the uploader keys, to check and remove `cdnKey` objects. */
  cdnObjects: S3Objects | null;
}
