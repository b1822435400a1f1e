import { chmod, mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { isTempFileOf, writeFileAtomic } from '@sluice/core';
import { isRole, type Manifest, type Role } from '@sluice/protocol';
import { acquireDataDirLock, type DataDirLock } from './dataDirLock.js';

export const METADATA_FILE = 'metadata.json';

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
  /** Ed25519 public keys (raw, base64) whose signed uploads this user may make; absent: none. */
  publisherKeys?: { publicKey: string; addedAt: string }[];
  createdAt: string;
  updatedAt: string;
  /**
   * ISO time of the last cut-off (disable, role change, device reset, password change): access
   * tokens and logins issued before it are refused. Absent for users never cut off, and in files
   * written before it existed.
   */
  tokensValidAfter?: string;
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

/** One upload of a resource. Blob ids name files in the blob store, never user input. */
export interface ResourceVersion {
  version: number;
  manifest: Manifest;
  smallBlobId: string;
  /** The big part in the local blob store, or null when only the CDN holds it (`cdnKey`). */
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
}

export interface MetadataState {
  version: 1;
  users: Record<string, UserRecord>;
  refreshFamilies: Record<string, RefreshFamily>;
  /** Keyed by `resourceKey(folder, name)`. */
  resources: Record<string, ResourceRecord>;
  /**
   * The ids (`jti`) of one-time parcel tokens already used, each with the time (epoch seconds)
   * after which it may be forgotten (its token has expired by then): kept here so a token stays
   * used across restarts. Absent until the first parcel token is used.
   */
  usedParcelTokens?: Record<string, number>;
}

function emptyState(): MetadataState {
  return { version: 1, users: {}, refreshFamilies: {}, resources: {} };
}

/** The key of a resource in `MetadataState.resources` (folder and name are validated names). */
export function resourceKey(folder: string, name: string): string {
  return `${folder}/${name}`;
}

/**
 * The embedded default's metadata: one JSON file (`metadata.json`, mode 0600) in the data
 * directory (created 0700), loaded on open and rewritten atomically after every mutation.
 * Mutations run one at a time through a queue, each on a copy of the committed state, so
 * concurrent callers never lose each other's updates and a failed write leaves memory and disk
 * unchanged. Reads see the last committed state. One process per data directory.
 */
export class MetadataStore {
  readonly dataDir: string;
  readonly path: string;
  private state: MetadataState;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly lock: DataDirLock;
  private closed = false;

  private constructor(dataDir: string, state: MetadataState, lock: DataDirLock) {
    this.dataDir = dataDir;
    this.path = join(dataDir, METADATA_FILE);
    this.state = state;
    this.lock = lock;
  }

  /** Opens (creating the directory and an empty store if needed) the store in `dataDir`. */
  static async open(dataDir: string): Promise<MetadataStore> {
    await ensureDataDir(dataDir);
    const lock = await acquireDataDirLock(dataDir);
    try {
      const path = join(dataDir, METADATA_FILE);
      // Temp files are only left by a crash mid-write; the target still holds the last commit.
      for (const name of await readdir(dataDir)) {
        if (isTempFileOf(path, name)) await unlink(join(dataDir, name)).catch(() => {});
      }
      let state: MetadataState;
      try {
        state = parseState(await readFile(path, 'utf8'), path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        state = emptyState();
        await writeFileAtomic(path, serialise(state));
      }
      return new MetadataStore(dataDir, state, lock);
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  /** The committed state. Treat it as read-only: change it only through `mutate`. */
  snapshot(): Readonly<MetadataState> {
    return this.state;
  }

  getUser(id: string): UserRecord | undefined {
    return Object.hasOwn(this.state.users, id) ? this.state.users[id] : undefined;
  }

  findUserByEmail(email: string): UserRecord | undefined {
    const wanted = normaliseEmail(email);
    return Object.values(this.state.users).find((u) => u.email === wanted);
  }

  listUsers(): UserRecord[] {
    return Object.values(this.state.users).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  getResource(folder: string, name: string): ResourceRecord | undefined {
    const key = resourceKey(folder, name);
    return Object.hasOwn(this.state.resources, key) ? this.state.resources[key] : undefined;
  }

  listResources(folder: string): ResourceRecord[] {
    return Object.values(this.state.resources)
      .filter((r) => r.folder === folder)
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Whether the parcel token `jti` has been used (and not yet forgotten). */
  parcelTokenUsed(jti: string): boolean {
    const used = this.state.usedParcelTokens;
    return used !== undefined && Object.hasOwn(used, jti);
  }

  getRefreshFamily(id: string): RefreshFamily | undefined {
    return Object.hasOwn(this.state.refreshFamilies, id)
      ? this.state.refreshFamilies[id]
      : undefined;
  }

  /**
   * Runs `fn` on a copy of the state after every earlier mutation has finished, writes the result
   * atomically and only then makes it the committed state. If `fn` throws or the write fails,
   * nothing changes and the error reaches the caller.
   */
  mutate<T>(fn: (draft: MetadataState) => T | Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('metadata store is closed'));
    const run = this.queue.then(async () => {
      const draft = structuredClone(this.state);
      const result = await fn(draft);
      await writeFileAtomic(this.path, serialise(draft));
      this.state = draft;
      return result;
    });
    this.queue = run.catch(() => {});
    return run;
  }

  /** Resolves once every queued mutation has been written. */
  async flush(): Promise<void> {
    await this.queue;
  }

  /** Writes what is queued, refuses further mutations and releases the data directory. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await this.lock.release();
  }
}

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

async function ensureDataDir(dataDir: string): Promise<void> {
  const created = await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // mkdir's mode is filtered by the umask; set it explicitly on the directory we created.
  if (created !== undefined) await chmod(dataDir, 0o700);
}

function serialise(state: MetadataState): string {
  return `${JSON.stringify(state, null, 2)}\n`;
}

function parseState(text: string, path: string): MetadataState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON; refusing to start over it`, { cause: e });
  }
  const s = raw as Partial<MetadataState> | null;
  if (
    typeof s !== 'object' ||
    s === null ||
    s.version !== 1 ||
    typeof s.users !== 'object' ||
    s.users === null ||
    typeof s.refreshFamilies !== 'object' ||
    s.refreshFamilies === null
  ) {
    throw new Error(`${path} is not a version 1 sluice metadata file`);
  }
  for (const u of Object.values(s.users)) {
    if (typeof u?.id !== 'string' || typeof u.email !== 'string' || !isRole(u.role)) {
      throw new Error(`${path} holds a malformed user record`);
    }
    // A cut-off that does not parse would let every old token through: refuse to start.
    const cut: unknown = u.tokensValidAfter;
    if (cut !== undefined && !(typeof cut === 'string' && Number.isFinite(Date.parse(cut)))) {
      throw new Error(`${path} holds a malformed tokensValidAfter for user ${u.id}`);
    }
  }
  // Files written before resources existed have no `resources` yet.
  if (s.resources === undefined) s.resources = {};
  if (typeof s.resources !== 'object' || s.resources === null) {
    throw new Error(`${path} holds a malformed resources table`);
  }
  const used: unknown = s.usedParcelTokens;
  if (
    used !== undefined &&
    (typeof used !== 'object' ||
      used === null ||
      Object.values(used).some((t) => typeof t !== 'number'))
  ) {
    throw new Error(`${path} holds a malformed usedParcelTokens table`);
  }
  return s as MetadataState;
}
