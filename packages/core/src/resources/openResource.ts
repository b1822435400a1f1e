import { Readable } from 'node:stream';
import { SluiceError } from '@sluice/protocol';
import type { Session } from '../http/session.js';
import { pull } from './pull.js';
import type { PullOptions, PullResult } from './pullOptions.js';

/** Pull's options without a destination: the plaintext stays in this process's memory. */
export type OpenResourceOptions = Omit<PullOptions, 'to'>;

/** Bytes a stream of an opened resource hands out at a time, unless asked otherwise. */
const STREAM_PIECE = 1024 * 1024;

/**
 * A resource pulled into memory, verified, for a model runtime that takes a Buffer or a stream
 * (`InferenceSession.create(handle.data)`). `close()` zero-fills the plaintext, ends the streams
 * still reading it, and makes every further use throw ERR_RESOURCE_CLOSED; `await using` (or
 * `using`) closes it at the end of the block. Bytes the runtime copied are the runtime's.
 */
export class OpenedResource implements PullResult, Disposable, AsyncDisposable {
  readonly resource: PullResult['resource'];
  readonly size: number;
  readonly fromCache: boolean;
  readonly publisher: string | null;
  #data: Buffer | undefined;
  readonly #streams = new Set<Readable>();

  constructor(result: PullResult, data: Buffer) {
    this.resource = result.resource;
    this.size = result.size;
    this.fromCache = result.fromCache;
    this.publisher = result.publisher;
    this.#data = data;
  }

  get closed(): boolean {
    return this.#data === undefined;
  }

  /** The plaintext itself (not a copy): wiped by close(). */
  get data(): Buffer {
    return this.#open('data');
  }

  /**
   * A Readable of the plaintext from its first byte, in pieces of `highWaterMark` bytes (default
   * 1 MiB) that are views of the same memory, so close() wipes what a reader still holds.
   * Each call gives a new stream; close() destroys the ones still open with ERR_RESOURCE_CLOSED.
   */
  stream(options: { highWaterMark?: number } = {}): Readable {
    const data = this.#open('stream()');
    const piece = options.highWaterMark ?? STREAM_PIECE;
    if (!Number.isSafeInteger(piece) || piece <= 0) {
      throw new RangeError(`highWaterMark must be a positive integer, got ${String(piece)}`);
    }
    let offset = 0;
    const streams = this.#streams;
    const readable = new Readable({
      highWaterMark: piece,
      read() {
        if (offset >= data.length) {
          this.push(null);
          return;
        }
        const end = Math.min(offset + piece, data.length);
        this.push(data.subarray(offset, end));
        offset = end;
      },
      destroy(error, callback) {
        streams.delete(readable);
        callback(error);
      },
    });
    streams.add(readable);
    return readable;
  }

  /** Wipes the plaintext (zero-fill) and ends open streams. Idempotent. */
  close(): void {
    const data = this.#data;
    if (data === undefined) return;
    this.#data = undefined;
    for (const s of [...this.#streams]) s.destroy(closedError('stream'));
    this.#streams.clear();
    data.fill(0);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }

  #open(what: string): Buffer {
    if (this.#data === undefined) throw closedError(what);
    return this.#data;
  }
}

function closedError(what: string): SluiceError {
  return new SluiceError(
    'ERR_RESOURCE_CLOSED',
    `${what} of a closed resource: its plaintext was wiped by close()`,
  );
}

/**
 * Pulls a resource into memory as `pull` does (the device envelope, the manifest and every chunk
 * verified; with `cacheDir`, the still-encrypted big part cached and reused) and hands it over
 * as an OpenedResource: no file holding plaintext is ever created, and a failed pull leaves
 * none of it in memory either (see sink.ts).
 */
export async function openResource(
  session: Session,
  folder: string,
  name: string,
  options: OpenResourceOptions,
): Promise<OpenedResource> {
  if (options === null || typeof options !== 'object') throw new TypeError('options required');
  const { data, ...result } = await pull(session, folder, name, { ...options, to: 'buffer' });
  return new OpenedResource(result, data);
}
