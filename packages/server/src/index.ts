export {
  CDN_CONFIG_AAD,
  CDN_CONFIG_RESOURCE,
  type CdnConfig,
  cdnObjectKey,
  type HttpCdnConfig,
  type PublicCdnConfig,
  RESOURCE_NAME_PATTERN,
  type S3CdnConfig,
  type S3Credentials,
} from '@sluice/protocol';
export {
  createGuard,
  type GuardError,
  type GuardMetadata,
  type GuardRequest,
  type GuardResult,
  type UserContext,
} from './auth/guardRequest.js';
export { loadOrCreateSigningKeys, SIGNING_KEY_FILE, type SigningKeys } from './auth/keys.js';
export { DEFAULT_LOGIN_LIMITS, type LimitRule, type LoginLimits } from './auth/loginLimiter.js';
export {
  DEFAULT_SCRYPT_PARAMS,
  hashPassword,
  type ScryptParams,
  validateScryptParams,
  verifyPassword,
} from './auth/passwordHash.js';
export {
  isAllowed,
  isOperation,
  isRole,
  mayManageRole,
  OPERATIONS,
  type Operation,
  PERMISSIONS,
  ROLES,
  type Role,
} from './auth/permissions.js';
export {
  type AccessClaims,
  CLOCK_SKEW_SECONDS,
  DEFAULT_ACCESS_TOKEN_TTL_SECONDS,
  DEFAULT_REFRESH_TOKEN_TTL_SECONDS,
  type IssuedTokens,
  TokenService,
} from './auth/tokens.js';
export {
  PASSWORD_MAX_LENGTH,
  PASSWORD_MIN_LENGTH,
  type PublicUser,
} from './auth/userAccounts.js';
export {
  createServer,
  DEFAULT_BODY_LIMIT,
  DEFAULT_SHUTDOWN_GRACE_MS,
  type LoggerOptions,
  type ServerOptions,
  type SluiceServer,
} from './createServer.js';
export { API_ERROR_STATUS, type ApiErrorCode, isApiError } from './errors.js';
export { initAdmin } from './initAdmin.js';
export { DEFAULT_BIG_PART_LIMIT, SMALL_PART_LIMIT } from './routes/resourceRoutes.js';
export type { RouteInfo, RouteOperation } from './routes/routeGuard.js';
export { BLOBS_DIR, BlobStore } from './stores/blobStore.js';
export { MASTER_KEY_FILE } from './stores/masterKey.js';
export {
  METADATA_FILE,
  type MetadataState,
  MetadataStore,
  type RefreshFamily,
  type ResourceRecord,
  type ResourceVersion,
  type UserRecord,
} from './stores/metadataStore.js';
export type { PartStorage, PendingBlob } from './stores/partStorage.js';
export { S3PartStore, type S3StorageConfig } from './stores/s3PartStore.js';
