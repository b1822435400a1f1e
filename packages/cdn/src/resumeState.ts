import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';

/** What a resume file belongs to: a download of another object, version or chunking ignores it. */
export interface ResumeIdentity {
  source: string;
  etag: string;
  size: number;
  chunkSize: number;
}

export interface ResumeStateOptions {
  /** Write the file after this many newly delivered chunks (default 16). */
  everyChunks?: number;
  /** ... or when this many ms passed since the last write (default 1000). */
  everyMs?: number;
}

interface ResumeRecord extends ResumeIdentity {
  version: 1;
  done: number[];
}

/**
 * The chunk indexes of one download that the caller has already received, kept in a small JSON
 * file so that a restarted download fetches only the others. Writes are atomic (temp file +
 * rename), serialised, and batched; a crash loses at most the last batch, whose chunks are then
 * fetched again.
 */
export class ResumeState {
  readonly #file: string;
  readonly #identity: ResumeIdentity;
  readonly #done: Set<number>;
  readonly #everyChunks: number;
  readonly #everyMs: number;
  #unsaved = 0;
  #lastWrite = Date.now();
  #writing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(
    file: string,
    identity: ResumeIdentity,
    done: Set<number>,
    options: ResumeStateOptions,
  ) {
    this.#file = file;
    this.#identity = identity;
    this.#done = done;
    this.#everyChunks = options.everyChunks ?? 16;
    this.#everyMs = options.everyMs ?? 1000;
  }

  /** Loads `file` when it belongs to `identity`; a missing, unreadable or foreign file starts empty. */
  static async open(
    file: string,
    identity: ResumeIdentity,
    options: ResumeStateOptions = {},
  ): Promise<ResumeState> {
    const done = new Set<number>();
    const chunks = Math.ceil(identity.size / identity.chunkSize);
    try {
      const record = JSON.parse(await readFile(file, 'utf8')) as Partial<ResumeRecord>;
      const same =
        record.version === 1 &&
        record.source === identity.source &&
        record.etag === identity.etag &&
        record.size === identity.size &&
        record.chunkSize === identity.chunkSize &&
        Array.isArray(record.done);
      if (same) {
        for (const i of record.done ?? []) {
          if (Number.isSafeInteger(i) && i >= 0 && i < chunks) done.add(i);
        }
      }
    } catch {
      // no usable state: start from nothing (the file is replaced on the first write)
    }
    return new ResumeState(file, identity, done, options);
  }

  /** Chunks delivered by earlier runs (and this one so far). */
  get done(): ReadonlySet<number> {
    return this.#done;
  }

  /** Records a chunk the caller has received; writes the file when a batch is full or old. */
  record(index: number): void {
    this.#done.add(index);
    this.#unsaved++;
    if (this.#unsaved >= this.#everyChunks || Date.now() - this.#lastWrite >= this.#everyMs) {
      this.#schedule();
    }
  }

  /** Writes what is recorded now and waits for every write to finish. */
  async flush(): Promise<void> {
    if (this.#unsaved > 0) this.#schedule();
    await this.#writing;
  }

  /** Deletes the file (the download is complete); later `record` calls do nothing. */
  async remove(): Promise<void> {
    this.#closed = true;
    await this.#writing;
    await rm(this.#file, { force: true });
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#unsaved = 0;
    this.#lastWrite = Date.now();
    const record: ResumeRecord = {
      version: 1,
      ...this.#identity,
      done: [...this.#done].sort((a, b) => a - b),
    };
    // A failed write only weakens resuming (those chunks are fetched again); it never fails the
    // download, so its error is dropped here.
    this.#writing = this.#writing.then(() => writeAtomic(this.#file, record)).catch(() => {});
  }
}

async function writeAtomic(file: string, record: ResumeRecord): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, JSON.stringify(record));
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
