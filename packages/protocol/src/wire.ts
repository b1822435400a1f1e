// The bodies of every route (docs/API.md), as both sides type them. JSON only: binary fields are
// standard base64 strings, times ISO 8601 strings. Multipart and raw-byte routes are described
// by their fields.

import type { ApiErrorCode } from './errors.js';
import type { SignedLease } from './lease.js';

/** The roles a user can hold, most privileged first. */
export const ROLES = ['ApiAdmin', 'Admin', 'ResourceUploader', 'Validator', 'Operator'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Every error answer: `{ error, code }`; `error` is for people, `code` for programs. */
export interface ErrorBody {
  error: string;
  code: ApiErrorCode;
}

/** A user as the API shows it. */
export interface User {
  id: string;
  email: string;
  role: Role;
  disabled: boolean;
  /** A device is bound to this user. */
  deviceBound: boolean;
  createdAt: string;
  updatedAt: string;
}

// --- auth ---

/** `POST /login`. */
export interface LoginRequest {
  email: string;
  password: string;
}

/** `POST /login` and `POST /token/refresh`. */
export interface TokenResponse {
  accessToken: string;
  tokenType: 'Bearer';
  /** Seconds the access token lives. */
  expiresIn: number;
  refreshToken: string;
  refreshExpiresAt: string;
}

/** `POST /token/refresh` and `POST /logout`. */
export interface RefreshRequest {
  refreshToken: string;
}

/** `GET /me`, and every user-administration answer. */
export interface UserResponse {
  user: User;
}

/** One key of `GET /.well-known/jwks.json`. */
export interface PublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}

export interface JwksResponse {
  keys: PublicJwk[];
}

// --- publisher keys ---

/** `POST /me/publisher-keys`: an Ed25519 public key, raw 32 bytes in standard base64. */
export interface PublisherKeyRequest {
  publicKey: string;
}

/** A publisher key registered to an account: uploads it signs are accepted from that account. */
export interface PublisherKeyInfo {
  publicKey: string;
  addedAt: string;
}

/** `POST /me/publisher-keys` → 201 (added) or 200 (already registered to this account). */
export interface PublisherKeyResponse {
  publisherKey: PublisherKeyInfo;
}

/** `GET /me/publisher-keys`, oldest first. */
export interface PublisherKeysResponse {
  publisherKeys: PublisherKeyInfo[];
}

// --- users ---

/** `GET /users`. */
export interface UsersResponse {
  users: User[];
  /** Present when more users follow: pass it as `?cursor=` for the next page. */
  nextCursor?: string;
}

/** The page size of `GET /users` when `?limit=` is absent, and the largest one allowed. */
export const USERS_PAGE_DEFAULT = 100;
export const USERS_PAGE_MAX = 1000;

/** `POST /users`. */
export interface CreateUserRequest {
  email: string;
  password: string;
  role: Role;
}

/** `POST /users/:id/role`. */
export interface SetRoleRequest {
  role: Role;
}

/**
 * `POST /me/password` → 200 TokenResponse: the caller's current password and the new one. Every
 * login of the account ends; the answer is a new one.
 */
export interface ChangePasswordRequest {
  password: string;
  newPassword: string;
}

/** `POST /users/:id/password` (admin reset) → 200 UserResponse. */
export interface SetPasswordRequest {
  password: string;
}

// --- resources ---

/** The text fields of the multipart `POST /resources/:folder` (file parts `small`, `big`). */
export const UPLOAD_FIELDS = ['name', 'manifest', 'dataKey', 'cdnKey', 'release'] as const;
export type UploadField = (typeof UPLOAD_FIELDS)[number];

/** `POST /resources/:folder` → 201. */
export interface UploadResponse {
  folder: string;
  name: string;
  version: number;
}

/** `POST /resources/:folder` → 409 `ERR_VERSION_CONFLICT`: a v2 manifest named another version. */
export interface VersionConflictBody {
  error: string;
  code: 'ERR_VERSION_CONFLICT';
  /** The latest version stored (0 when there is none): sign `latest + 1` and try again. */
  latest: number;
}

/** What a device proves about itself: its account's password and its hardware hash. */
export interface DeviceProof {
  password: string;
  /** The device's hardware hash, 1 to 256 characters of `[A-Za-z0-9+/=_.:-]`. */
  hardware: string;
  /**
   * One digest per present hardware factor (docs/FORMAT.md §7, "Factor digests"), so the server
   * can accept a device of which one factor drifted. Optional: without it, only the exact hash
   * matches the binding.
   */
  hardwareFactors?: HardwareFactorDigests;
}

/** Factor name (`disk.serial`) → lower-case hex SHA-256 of `sluice-hw-factor-v1\nname=value\n`. */
export type HardwareFactorDigests = Record<string, string>;

/** What the server accepts as `hardwareFactors`: at most 32 names of this shape, 64-hex values. */
export const HARDWARE_FACTOR_LIMITS = Object.freeze({
  maxFactors: 32,
  name: /^[a-z][A-Za-z0-9]{0,31}(\.[a-z][A-Za-z0-9]{0,31}){0,3}$/,
  digest: /^[0-9a-f]{64}$/,
} as const);

/** `POST /resources/get/:folder`. */
export interface EnvelopeRequest extends DeviceProof {
  fileName: string;
  /** This version instead of the released one (see VersionsResponse). */
  version?: number;
}

/**
 * What `POST /resources/get/:folder` adds to the sealed envelope: the offline lease of this
 * device for this version (null when the server allows no offline use) and the server's clock.
 */
export interface EnvelopeLeaseFields {
  lease: SignedLease | null;
  /** The server's current time (ISO 8601): the device keeps the newest it has seen. */
  serverTime: string;
}

// --- leases ---

/** `POST /leases/check`: the leases this account holds on this device (at most 1000). */
export interface LeaseCheckRequest {
  leases: SignedLease[];
}

/** Why a lease no longer holds. */
export type LeaseRevocation =
  | 'bad-signature'
  | 'other-user'
  | 'user-disabled'
  | 'device-reset'
  | 'account-cut-off'
  | 'version-deleted'
  | 'expired';

/** `POST /leases/check` → 200: the leases that no longer hold (by id); the others still do. */
export interface LeaseCheckResponse {
  serverTime: string;
  revoked: { id: string; reason: LeaseRevocation }[];
}

export const LEASE_CHECK_MAX = 1000;

/** One entry of `GET /resources/:folder`. */
export interface ListedResource {
  name: string;
  /** The latest version. */
  version: number;
  /** How many versions are stored. */
  versions: number;
  blobSize: number;
  smallSize: number;
  bigSize: number;
  /** False when only the CDN holds the big part. */
  bigStored: boolean;
  createdAt: string;
  /** The released version: what a device gets when it names none. */
  current: number;
  /** The number the next upload gets (numbers of deleted versions are never reused). */
  nextVersion: number;
}

/** `GET /resources/:folder`. */
export interface ListResponse {
  folder: string;
  resources: ListedResource[];
}

/** One entry of `GET /resources/:folder/:name/versions`. */
export interface ListedVersion {
  version: number;
  blobSize: number;
  smallSize: number;
  bigSize: number;
  /** False when only the CDN holds the big part. */
  bigStored: boolean;
  createdAt: string;
  /** The uploader's email, or null when that account no longer exists. */
  uploadedBy: string | null;
  /** Whether this is the released version. */
  current: boolean;
}

/** `GET /resources/:folder/:name/versions`: every stored version, oldest first. */
export interface VersionsResponse {
  folder: string;
  name: string;
  current: number;
  versions: ListedVersion[];
}

/** `POST /resources/:folder/:name/release`: make `version` the one devices get by default. */
export interface ReleaseRequest {
  version: number;
}

/** `POST /resources/:folder/:name/release` → 200. */
export interface ReleaseResponse {
  folder: string;
  name: string;
  current: number;
  /** The version that was current before. */
  previous: number;
}

/** `DELETE /resources/:folder/:name?version=N` → 200. */
export interface RemoveVersionResponse {
  folder: string;
  name: string;
  version: number;
  /** The released version now; null when that was the last version (the resource is gone). */
  current: number | null;
}

// --- cdn config ---

/** `POST /cdn-config`. */
export interface CdnConfigRequest extends DeviceProof {
  /** Ask for the uploader keys too (ResourceUploader, Admin, ApiAdmin only). */
  write?: boolean;
}

// --- parcels ---

export type ParcelOperationName = 'upload' | 'download' | 'remove' | 'inspect';

/** `POST /api/v1/auth`. */
export interface ParcelTokenRequest {
  /** The address of the key that will sign the request (40 hex digits). */
  user: string;
  operation:
    | { name: 'upload'; hash: string }
    | { name: Exclude<ParcelOperationName, 'upload'>; id: string };
}

export interface ParcelTokenResponse {
  token: string;
}

/** `POST /api/v1/parcels` → 201 (stored) or 200 (this owner already had it). */
export interface ParcelPutResponse {
  id: string;
}

/** `GET /api/v1/parcels/:id?key=metadata`. */
export interface ParcelMetadataResponse {
  id: string;
  size: number;
  sha256: string;
  createdAt: string;
}

/** `GET /api/v1/parcels/:id?key=owner`. */
export interface ParcelOwnerResponse {
  owner: string;
}

/** The headers of a signed parcel request. */
export const PARCEL_HEADERS = Object.freeze({
  token: 'x-auth-token',
  publicKey: 'x-public-key',
  signature: 'x-signature',
});
