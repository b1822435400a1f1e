import type { Manifest, Role } from '@sluice/protocol';

export interface UserRecord {
  id: string;
  /** Lower-cased and trimmed; unique. */
  email: string;
  role: Role;
  disabled: boolean;
  /** `scrypt$<log2 N>$<r>$<p>$<salt b64url>$<hash b64url>`, see auth/passwordHash.ts. */
  passwordHash: string;
  /** Hardware hash of the device this user is bound to, or null until the first download. */
  boundHardwareHash: string | null;
  /**
   * The bound device's factor digests (docs/FORMAT.md §7), when it sent them: a device whose hash
   * changed is still accepted while enough of them match (auth/driftPolicy.ts). Absent for a
   * binding made by a client that sent only the hash: then only that exact hash matches.
   */
  boundHardwareFactors?: Record<string, string>;
  /** ISO time the binding last moved to a drifted device (drift is refused for a while after). */
  deviceDriftedAt?: string;
  /** The organisation (tenant) the user belongs to; `default` for accounts from before them. */
  orgId: string;
  /** ISO time the bound device was bound (absent while unbound, and for bindings from before). */
  boundAt?: string;
  createdAt: string;
  updatedAt: string;
  /**
   * ISO time of the last cut-off (disable, role change, device reset, password change): access
   * tokens and logins issued before it are refused. Absent for users never cut off.
   */
  tokensValidAfter?: string;
}

/** An Ed25519 public key (raw, base64) whose signed uploads its user may make. */
export interface PublisherKeyRecord {
  publicKey: string;
  addedAt: string;
}

/** One login's chain of rotating refresh tokens; revoking it ends the whole chain. */
export interface RefreshFamily {
  id: string;
  userId: string;
  /** SHA-256 (hex) of the refresh token that is valid now. */
  currentHash: string;
  /** First 128 bits (hex) of the SHA-256 of recently rotated-out tokens, newest last:
   * presenting one of them is reuse. */
  previousHashes: string[];
  createdAt: string;
  rotatedAt: string;
  /** Absolute end of the family: refreshing never extends it. */
  expiresAt: string;
  revokedAt: string | null;
  revokedReason: string | null;
}

/** One upload of a resource. Blob ids name stored parts, never user input. */
export interface ResourceVersion {
  version: number;
  manifest: Manifest;
  smallBlobId: string;
  /** The big part in the part storage, or null when only the CDN holds it (`cdnKey`). */
  bigBlobId: string | null;
  cdnKey: string | null;
  /** The data key under the master key (see stores/masterKey.ts); never stored in plaintext. */
  wrappedDataKey: string;
  createdAt: string;
  /** User id of the uploader. */
  uploadedBy: string;
}

export interface ResourceRecord {
  /** Random; part of the data keys' aad and of ETags, so a re-created resource differs. */
  id: string;
  folder: string;
  name: string;
  /** Oldest first; the last one is the latest. */
  versions: ResourceVersion[];
  /**
   * The released version: the one a device gets when it names none (`sluice release`). Null for
   * records from before the pointer existed: the latest is current then.
   */
  currentVersion: number | null;
}

export interface ParcelRecord {
  /** Lowercase hex SHA-256 of (owner address bytes ‖ content SHA-256 bytes). */
  id: string;
  /** The address of the key that uploaded it. */
  owner: string;
  /** Lowercase hex SHA-256 of the content. */
  sha256: string;
  size: number;
  /** Where the bytes are in the part storage; null once removed. */
  blobId: string | null;
  createdAt: string;
  /** Set by remove: the record stays as a tombstone (410) and the bytes are gone. */
  removedAt: string | null;
}

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}
