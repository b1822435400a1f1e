export {
  CDN_CONFIG_AAD,
  CDN_CONFIG_RESOURCE,
  type CdnConfig,
  cdnObjectKey,
  type DeliveredCdnConfig,
  type HttpCdnConfig,
  type PublicCdnConfig,
  parseDeliveredCdnConfig,
  type S3CdnConfig,
  type S3Credentials,
} from './cdnConfig.js';
export {
  BLOCK_BYTES,
  checkIv,
  checkKey,
  checkOptions,
  checkPath,
  checkPositiveMultipleOf16,
  checkSignal,
  checkSize,
  checkThreads,
  KEY_BYTES,
  MAX_THREADS,
  toBytes,
} from './checks.js';
export {
  deriveEnvelopeKey,
  ENVELOPE_KDF,
  ENVELOPE_VERSION,
  type EnvelopePayload,
  type EnvelopeResource,
  envelopeAad,
  envelopeSalt,
  isEnvelopeResource,
  openEnvelope,
  type SealedEnvelope,
  sealEnvelope,
} from './envelope.js';
export {
  type ApiErrorCode,
  ERROR_CODES,
  type ErrorClass,
  type ErrorCodeInfo,
  httpStatusOf,
  isErrorCode,
  isSluiceError,
  SluiceError,
  type SluiceErrorCode,
  type SluiceErrorOptions,
} from './errors.js';
export {
  DEFAULT_LEASE_SECONDS,
  isSignedLease,
  LEASE_DOMAIN,
  LEASE_VERSION,
  type Lease,
  leaseManifestDigest,
  leaseSigningInput,
  parseLease,
  type SignedLease,
  verifyLease,
} from './lease.js';
export {
  chunkCount,
  chunkLength,
  DEFAULT_CHUNK_SIZE,
  type Manifest,
  type ManifestResource,
  type ManifestSignature,
  type ManifestV1,
  type ManifestV2,
  thirtyPercent,
  validateManifest,
} from './manifest.js';
export {
  canonicalManifestJson,
  MANIFEST_KEY_CHECK_LABEL,
  MANIFEST_SIGNING_CONTEXT,
  manifestSignedBytes,
} from './manifestSigning.js';
export { isObjectKey, isResourceName, RESOURCE_NAME_PATTERN, RESOURCE_NAME_RULE } from './names.js';
export * from './wire.js';
