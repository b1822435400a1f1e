// The contract (names, error codes, route bodies, formats) is part of the client's API.
export * from '@sluice/protocol';
export {
  CDN_CONFIG_AAD,
  cdnObjectKey,
  type DeliveredCdnConfig,
  type PublicCdnConfig,
  RESOURCE_NAME_PATTERN,
  type S3Credentials,
} from '@sluice/protocol';
export {
  BigPartCache,
  type BigPartCacheOptions,
  type CacheEntry,
  type PartConsumer,
  type ProvideOptions,
  type PruneOptions,
  type VerifiedEntry,
  type VerifyStatus,
} from './cache/bigPartCache.js';
export {
  type CacheProblem,
  type CacheProblemKind,
  cacheDirProblem,
} from './cache/cacheAvailability.js';
export { manifestDigest } from './cache/manifestDigest.js';
export { type BackendInfo, type BackendKind, backend } from './crypto/backend.js';
export {
  type CryptoBackend,
  concat,
  createDecryptStream,
  createEncryptStream,
  cryptoBackend,
  decryptChunk,
  decryptFile,
  encryptFile,
  sha256,
  sha256File,
  sha256FileChunks,
  split,
} from './crypto/cryptoBackend.js';
export type {
  DecryptFileOptions,
  EncryptFileOptions,
  FileResult,
} from './crypto/fileCipherFacade.js';
export type { Sha256FileChunksOptions, Sha256FileOptions } from './crypto/hashFacade.js';
export type { SignalOptions } from './crypto/splitConcatFacade.js';
export type { DecryptChunkOptions } from './crypto/streamCipherFacade.js';
export {
  BlobChunkDecryptor,
  chunkBlobOffset,
  type PlainPiece,
} from './format/blobChunkDecryptor.js';
export {
  type BuildManifestOptions,
  buildManifest,
  type ManifestV2Parts,
  manifestKeyCheck,
  toManifestV2,
  verifyChunk,
  verifyChunkAsync,
  verifyDataKey,
  verifySmallPart,
} from './format/manifest.js';
export {
  type PublisherPrivateKey,
  publicKeyObject,
  publisherPublicKey,
  signManifest,
  type VerifiedManifest,
  type VerifyManifestOptions,
  verifyManifest,
} from './format/manifestSignature.js';
export {
  generatePublisherKey,
  type PublisherKey,
  parsePublicKeys,
  readPublisherKey,
  readTrustedPublishers,
} from './format/publisherKeys.js';
export {
  joinAndOpen,
  type SealAndSplitOptions,
  type SealAndSplitResult,
  sealAndSplit,
} from './format/sealAndSplit.js';
export {
  blobSize,
  IV_BYTES,
  MIN_BLOB_BYTES,
  type OpenOptions,
  openBuffer,
  openFile,
  readBlobIv,
  type SealOptions,
  sealBuffer,
  sealFile,
} from './format/sealedBlob.js';
export {
  describeSealedFile,
  openSealedFile,
  SEALED_FILE_FORMAT,
  SEALED_FILE_MAC_INFO,
  type SealedFileManifest,
  validateSealedFileManifest,
} from './format/sealedFileManifest.js';
export { smallPartSize } from './format/smallPartSize.js';
export {
  factorDigest,
  factorDigests,
  factorsOverride,
  HARDWARE_FACTOR_FORMAT,
} from './hardware/factorDigests.js';
export {
  canonicalHardware,
  HARDWARE_FACTORS,
  HARDWARE_FORMAT,
  type HardwareFactor,
  type HardwareInfo,
  hardwareFactorDigests,
  hardwareHash,
  hardwareInfo,
  hashCanonicalHardware,
  normaliseFactor,
} from './hardware/hardwareInfo.js';
export type { AccessClaims } from './http/auth/accessToken.js';
export {
  BadRequest,
  Conflict,
  Forbidden,
  HttpError,
  type HttpErrorDetails,
  httpErrorFor,
  isHttpError,
  NetworkError,
  NotFound,
  RateLimited,
  ServerError,
  TooLarge,
  Unauthorized,
} from './http/errors.js';
export { environmentProxy } from './http/exchange.js';
export type { RequestOptions, SessionBody } from './http/requestOptions.js';
export { Session, type SessionOptions, type SessionUser } from './http/session.js';
export {
  CLOCK_TOLERANCE_MS,
  checkLeases,
  deriveLeaseKey,
  forgetAccount as forgetLeases,
  LEASE_KDF,
  type LeaseAccount,
  pullOffline,
} from './offline/index.js';
export {
  ParcelClient,
  type ParcelClientOptions,
  type ParcelGetOptions,
  type ParcelGetResult,
  type ParcelMetadata,
  type ParcelPutResult,
} from './parcels/parcelClient.js';
export { isTempFileOf } from './platform/atomicOutput.js';
export { type WriteFileAtomicOptions, writeFileAtomic } from './platform/atomicWrite.js';
export { FileLock, type LockOwner, type LockWaitOptions } from './platform/fileLock.js';
export { apiRangeDriver } from './resources/apiRangeDriver.js';
export {
  type CdnConfigRequest,
  fetchCdnConfig,
  publicCdnConfig,
} from './resources/cdnConfig.js';
export {
  OpenedResource,
  type OpenResourceOptions,
  openResource,
} from './resources/openResource.js';
export { pull } from './resources/pull.js';
export { type PullBytesOptions, pullBytes } from './resources/pullBytes.js';
export { pullMany } from './resources/pullMany.js';
export {
  PULL_MANY_DEFAULTS,
  type PullManyOptions,
  type PullManyProgress,
  type PullManyResult,
  type PullRequest,
} from './resources/pullManyOptions.js';
export type {
  PullLimits,
  PullOptions,
  PullProgress,
  PullResult,
} from './resources/pullOptions.js';
export type { PullWarning } from './resources/pullWarning.js';
export { push } from './resources/push.js';
export {
  DEFAULT_SMALL_SIZE_KB,
  type PushOptions,
  type PushProgress,
} from './resources/pushOptions.js';
export { checkResourceName } from './resources/resourceName.js';
export {
  checkVersion,
  listVersions,
  releaseVersion,
  removeResource,
  removeVersion,
} from './resources/versions.js';
