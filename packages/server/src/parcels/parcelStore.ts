import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { BlobStore } from '../stores/blobStore.js';
import type { PartStorage, PendingBlob } from '../stores/partStorage.js';
import type { ParcelRecord } from '../stores/records.js';
import type { Store } from '../stores/store.js';

/** With file storage, parcel bytes live in `<dataDir>/parcels/blobs/`, apart from resource parts. */
export const PARCELS_DIR = 'parcels';

export type { ParcelRecord } from '../stores/records.js';

/**
 * Parcel records in the store's `parcels` table and their bytes in a PartStorage: the server's
 * S3 bucket when it has one, else a BlobStore of its own (created with the first parcel), so the
 * resource blob sweep at start never sees them. Bytes are committed before the record that names
 * them and removed after the tombstone is written: a crash leaves at most unreferenced bytes,
 * which `open` sweeps (file storage).
 */
export class ParcelStore {
  private storage: PartStorage | Promise<PartStorage> | (() => Promise<PartStorage>);

  private constructor(
    private readonly store: Store,
    storage: PartStorage | (() => Promise<PartStorage>),
  ) {
    this.storage = storage;
  }

  /** Opens the parcels of `store`, their bytes in `dataDir` or `serverStorage` when that is S3. */
  static async open(
    store: Store,
    dataDir: string,
    serverStorage: PartStorage,
  ): Promise<ParcelStore> {
    if (serverStorage.kind !== 'file') return new ParcelStore(store, serverStorage);
    const dir = join(dataDir, PARCELS_DIR);
    const openOwn = () => BlobStore.open(dir);
    const exists = await access(dir).then(
      () => true,
      () => false,
    );
    if (!exists) return new ParcelStore(store, openOwn);
    const own = await openOwn();
    await own.removeUnreferenced(await store.parcels.referencedBlobIds());
    return new ParcelStore(store, own);
  }

  /** Streams `source` through `transforms` into a temp file of the part storage. */
  async receive(source: Readable, ...transforms: Transform[]): Promise<PendingBlob> {
    return (await this.parts()).receive(source, ...transforms);
  }

  /** The bytes of a stored parcel. */
  async openRead(blobId: string): Promise<Readable> {
    return (await this.parts()).openRead(blobId);
  }

  get(id: string): Promise<ParcelRecord | undefined> {
    return this.store.parcels.get(id);
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
    const live = await this.get(id);
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
    const outcome = await this.store.transaction((t) => t.parcels.addUnlessLive(record));
    // Another upload of the same content won the race: ours is not referenced.
    if (outcome.existed) await storage.remove(blobId).catch(() => {});
    return outcome;
  }

  /**
   * Turns a live parcel into a tombstone, then deletes its bytes. Returns the old record and, when
   * the bytes could not be deleted (the tombstone stands; they are never served), why.
   */
  async remove(id: string): Promise<{ record: ParcelRecord; bytesLeft?: unknown } | undefined> {
    const removed = await this.store.transaction((t) =>
      t.parcels.tombstone(id, new Date().toISOString()),
    );
    if (removed?.blobId == null) return removed === undefined ? undefined : { record: removed };
    try {
      await (await this.parts()).remove(removed.blobId);
      return { record: removed };
    } catch (e) {
      return { record: removed, bytesLeft: e };
    }
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
}
