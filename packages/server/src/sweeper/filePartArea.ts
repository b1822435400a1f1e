import { opendir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { OpenUpload, PartArea, StoredPart } from './partArea.js';
import { throwIfSweepAborted } from './sweepAborted.js';

// As BlobStore names its files: 32 hex digits (its `.tmp/` folder is not a part).
const BLOB_ID = /^[0-9a-f]{32}$/;

/**
 * A BlobStore's folder: `<dataDir>/blobs/` (resource parts) or `<dataDir>/parcels/blobs/`
 * (parcel bytes, created with the first parcel: a missing folder holds no parts). Files are
 * written whole before they are renamed into place, so there are no open uploads to abort.
 */
export class FilePartArea implements PartArea {
  readonly where: string;

  constructor(readonly dir: string) {
    this.where = dir;
  }

  async *parts(signal?: AbortSignal): AsyncGenerator<StoredPart> {
    let dir: AsyncIterable<{ name: string; isFile(): boolean }>;
    try {
      dir = await opendir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    for await (const entry of dir) {
      throwIfSweepAborted(signal);
      if (!entry.isFile() || !BLOB_ID.test(entry.name)) continue;
      const modifiedAt = await mtimeOf(join(this.dir, entry.name));
      if (modifiedAt !== undefined) yield { id: entry.name, modifiedAt };
    }
  }

  async removePart(id: string): Promise<void> {
    if (!BLOB_ID.test(id)) throw new Error('invalid blob id');
    await rm(join(this.dir, id), { force: true });
  }

  /** None: a folder has no open uploads. */
  async *openUploads(): AsyncGenerator<OpenUpload> {}

  async abortUpload(): Promise<boolean> {
    return false;
  }
}

/** The file's mtime, or undefined when it went away meanwhile (removed by its store). */
async function mtimeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}
