import { access, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { isTempFileOf, writeFileAtomic } from '@sluice/core';
import { BlobStore } from '../stores/blobStore.js';
import type { PartStorage, PendingBlob } from '../stores/partStorage.js';

/** Parcel metadata, next to `metadata.json` in the data directory. */
export const PARCELS_FILE = 'parcels.json';
/** With file storage, parcel bytes live in `<dataDir>/parcels/blobs/`, apart from resource parts. */
export const PARCELS_DIR = 'parcels';

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

interface ParcelsFile {
  version: 1;
  parcels: Record<string, ParcelRecord>;
}

/**
 * Parcel records in one JSON file (mode 0600, rewritten atomically after each change, one change
 * at a time) and their bytes in a PartStorage: the server's S3 bucket when it has one, else a
 * BlobStore of its own (created with the first parcel), so the resource blob sweep at start never
 * sees them. Bytes are committed
 * before the record that names them and removed after the tombstone is written: a crash leaves
 * at most unreferenced bytes, which `open` sweeps (file storage).
 */
export class ParcelStore {
  readonly path: string;
  private parcels: Record<string, ParcelRecord>;
  private queue: Promise<unknown> = Promise.resolve();
  private storage: PartStorage | Promise<PartStorage> | (() => Promise<PartStorage>);

  private constructor(
    path: string,
    storage: PartStorage | (() => Promise<PartStorage>),
    parcels: Record<string, ParcelRecord>,
  ) {
    this.path = path;
    this.storage = storage;
    this.parcels = parcels;
  }

  /** Opens the store of `dataDir`, over `serverStorage` when that is S3. */
  static async open(dataDir: string, serverStorage: PartStorage): Promise<ParcelStore> {
    const path = join(dataDir, PARCELS_FILE);
    for (const name of await readdir(dataDir)) {
      if (isTempFileOf(path, name)) await unlink(join(dataDir, name)).catch(() => {});
    }
    let parcels: Record<string, ParcelRecord>;
    try {
      parcels = parse(await readFile(path, 'utf8'), path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      parcels = {};
    }
    if (serverStorage.kind !== 'file') return new ParcelStore(path, serverStorage, parcels);
    const dir = join(dataDir, PARCELS_DIR);
    const openOwn = () => BlobStore.open(dir);
    const exists = await access(dir).then(
      () => true,
      () => false,
    );
    if (!exists) return new ParcelStore(path, openOwn, parcels);
    const own = await openOwn();
    const live = Object.values(parcels).flatMap((p) => (p.blobId === null ? [] : [p.blobId]));
    await own.removeUnreferenced(new Set(live));
    return new ParcelStore(path, own, parcels);
  }

  /** Streams `source` through `transforms` into a temp file of the part storage. */
  async receive(source: Readable, ...transforms: Transform[]): Promise<PendingBlob> {
    return (await this.parts()).receive(source, ...transforms);
  }

  /** The bytes of a stored parcel. */
  async openRead(blobId: string): Promise<Readable> {
    return (await this.parts()).openRead(blobId);
  }

  get(id: string): ParcelRecord | undefined {
    return Object.hasOwn(this.parcels, id) ? this.parcels[id] : undefined;
  }

  /**
   * Records a received upload as parcel `id`: commits its bytes and returns the new record, or
   * returns the live record that already has this id (the pending bytes are dropped).
   */
  async add(
    id: string,
    owner: string,
    sha256: string,
    pending: PendingBlob,
  ): Promise<{ record: ParcelRecord; existed: boolean }> {
    const live = this.get(id);
    if (live !== undefined && live.removedAt === null) {
      await pending.discard();
      return { record: live, existed: true };
    }
    const storage = await this.parts();
    const blobId = await storage.commit(pending);
    const record: ParcelRecord = {
      id,
      owner,
      sha256,
      size: pending.size,
      blobId,
      createdAt: new Date().toISOString(),
      removedAt: null,
    };
    const outcome = await this.mutate((draft) => {
      const current = draft[id];
      if (current !== undefined && current.removedAt === null) {
        return { record: current, existed: true };
      }
      draft[id] = record;
      return { record, existed: false };
    });
    // Another upload of the same content won the race: ours is not referenced.
    if (outcome.existed) await storage.remove(blobId).catch(() => {});
    return outcome;
  }

  /**
   * Turns a live parcel into a tombstone, then deletes its bytes. Returns the old record and, when
   * the bytes could not be deleted (the tombstone stands; they are never served), why.
   */
  async remove(id: string): Promise<{ record: ParcelRecord; bytesLeft?: unknown } | undefined> {
    const removed = await this.mutate((draft) => {
      const current = draft[id];
      if (current === undefined || current.removedAt !== null) return undefined;
      draft[id] = { ...current, blobId: null, removedAt: new Date().toISOString() };
      return current;
    });
    if (removed?.blobId == null) return removed === undefined ? undefined : { record: removed };
    try {
      await (await this.parts()).remove(removed.blobId);
      return { record: removed };
    } catch (e) {
      return { record: removed, bytesLeft: e };
    }
  }

  /** Resolves once every queued change has been written. */
  async flush(): Promise<void> {
    await this.queue.catch(() => {});
  }

  /** The part storage, opening the own BlobStore on first use (again after a failed open). */
  private async parts(): Promise<PartStorage> {
    if (typeof this.storage === 'function') {
      const open = this.storage;
      const opening = open();
      this.storage = opening;
      opening.catch(() => {
        if (this.storage === opening) this.storage = open;
      });
    }
    return this.storage;
  }

  private mutate<T>(fn: (draft: Record<string, ParcelRecord>) => T): Promise<T> {
    const run = this.queue.then(async () => {
      const draft = { ...this.parcels };
      const result = fn(draft);
      const file: ParcelsFile = { version: 1, parcels: draft };
      await writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`);
      this.parcels = draft;
      return result;
    });
    this.queue = run.catch(() => {});
    return run;
  }
}

function parse(text: string, path: string): Record<string, ParcelRecord> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON; refusing to start over it`, { cause: e });
  }
  const file = raw as Partial<ParcelsFile> | null;
  if (
    typeof file !== 'object' ||
    file === null ||
    file.version !== 1 ||
    typeof file.parcels !== 'object' ||
    file.parcels === null
  ) {
    throw new Error(`${path} is not a version 1 sluice parcels file`);
  }
  for (const [id, p] of Object.entries(file.parcels)) {
    if (p?.id !== id || typeof p.owner !== 'string' || typeof p.sha256 !== 'string') {
      throw new Error(`${path} holds a malformed parcel record`);
    }
  }
  return file.parcels;
}
