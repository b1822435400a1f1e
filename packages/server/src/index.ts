export {
  CDN_CONFIG_AAD,
  CDN_CONFIG_RESOURCE,
  type CdnConfig,
  cdnObjectKey,
  type HttpCdnConfig,
  isRole,
  type PublicCdnConfig,
  RESOURCE_NAME_PATTERN,
  ROLES,
  type Role,
  type S3CdnConfig,
  type S3Credentials,
} from '@sluice/protocol';
export {
  createServer,
  type SluiceServer,
} from './app/createServer.js';
export {
  DEFAULT_BODY_LIMIT,
  DEFAULT_SHUTDOWN_GRACE_MS,
  LOG_LEVELS,
  type LoggerOptions,
  type LogLevel,
  type ServerOptions,
} from './app/settings.js';
export type { TlsOptions } from './app/tls.js';
export { DEFAULT_TRANSFER_TIMEOUTS, type TransferTimeouts } from './app/transferTimeouts.js';
export type { TrustProxy } from './app/trustProxy.js';
export {
  type BindingPolicy,
  DEFAULT_BINDING_POLICY,
  type FactorMatch,
  IDENTIFYING_FACTORS,
  MIN_MATCH_FLOOR,
  matchFactors,
  resolveBindingPolicy,
} from './auth/driftPolicy.js';
export {
  createGuard,
  type GuardError,
  type GuardMetadata,
  type GuardRequest,
  type GuardResult,
  type UserContext,
} from './auth/guardRequest.js';
export { loadOrCreateSigningKeys, SIGNING_KEY_FILE, type SigningKeys } from './auth/keys.js';
export {
  type BackoffRule,
  DEFAULT_LOGIN_LIMITS,
  type LimitRule,
  type LoginLimits,
} from './auth/loginLimiter.js';
export {
  DEFAULT_SCRYPT_PARAMS,
  hashPassword,
  type ScryptParams,
  validateScryptParams,
  verifyPassword,
} from './auth/passwordHash.js';
export { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from './auth/passwordRules.js';
export {
  isAllowed,
  isOperation,
  mayManageRole,
  OPERATIONS,
  type Operation,
  PERMISSIONS,
} from './auth/permissions.js';
export type { RouteInfo, RouteOperation } from './auth/routeGuard.js';
export {
  type AccessClaims,
  CLOCK_SKEW_SECONDS,
  DEFAULT_ACCESS_TOKEN_TTL_SECONDS,
  DEFAULT_REFRESH_TOKEN_TTL_SECONDS,
  TokenService,
} from './auth/tokens.js';
export { API_ERROR_STATUS, type ApiErrorCode, isApiError } from './errors.js';
export { type LoginRefusal, ServerMetrics } from './ops/metrics.js';
export {
  type CheckOutcome,
  DEFAULT_READINESS_TIMEOUT_MS,
  type ReadinessCheck,
  type ReadinessReport,
} from './ops/readiness.js';
export { DEFAULT_BIG_PART_LIMIT, SMALL_PART_LIMIT } from './resources/limits.js';
export { BLOBS_DIR, BlobStore } from './stores/blobStore.js';
export { BACKUP_SUFFIX, LEGACY_METADATA_FILE } from './stores/legacyImport.js';
export { MASTER_KEY_FILE } from './stores/masterKey.js';
export type { PartStorage, PendingBlob } from './stores/partStorage.js';
export type {
  ParcelRecord,
  PublisherKeyRecord,
  RefreshFamily,
  ResourceRecord,
  ResourceVersion,
  UserRecord,
} from './stores/records.js';
export { S3PartStore, type S3StorageConfig } from './stores/s3PartStore.js';
export type { PoolStats, SqlDatabase, SqlExecutor } from './stores/sql/database.js';
export { migrate, SCHEMA_VERSION } from './stores/sql/migrations.js';
export { describeDatabaseUrl } from './stores/sql/postgresDatabase.js';
export { DATABASE_FILE, Store, type StoreOptions, type Tables } from './stores/store.js';
export { initAdmin } from './users/initAdmin.js';
