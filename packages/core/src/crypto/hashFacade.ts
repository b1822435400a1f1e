import { checkOptions, checkPath, checkSignal, checkSize, toBytes } from '@sluice/protocol';
import type { BackendOps } from './backendOps.js';
import { guarded, sizeOf } from './guarded.js';
import type { SignalOptions } from './splitConcatFacade.js';

type Bytes = Buffer | Uint8Array;

export interface Sha256FileOptions extends SignalOptions {
  offset?: number;
  /** Bytes to hash from `offset`; default to the end of the file. */
  length?: number;
}

export interface Sha256FileChunksOptions extends SignalOptions {
  offset?: number;
}

/** SHA-256 of bytes, of a file range, and of each chunk of a file. */
export interface HashFacade {
  sha256(data: Bytes): Promise<Buffer>;
  sha256File(path: string, opts?: Sha256FileOptions): Promise<Buffer>;
  sha256FileChunks(
    path: string,
    chunkSize: number,
    opts?: Sha256FileChunksOptions,
  ): Promise<Buffer[]>;
}

/** The hash operations over `getOps`, called only once every argument has been checked. */
export function hashFacade(getOps: () => BackendOps): HashFacade {
  return {
    async sha256(data) {
      const d = toBytes(data, 'data');
      const ops = getOps();
      return guarded('sha256', () => ops.sha256(d));
    },

    async sha256File(path, opts) {
      checkPath(path, 'path');
      const o = checkOptions<Sha256FileOptions>(opts);
      const offset = o.offset === undefined ? 0 : checkSize(o.offset, 'offset');
      const length = o.length === undefined ? -1 : checkSize(o.length, 'length');
      const signal = checkSignal(o.signal);
      const ops = getOps();
      const size = await sizeOf(path, 'path');
      const end = length < 0 ? size : offset + length;
      if (offset > size || end > size) {
        throw new RangeError(
          `range [${offset}, ${end}) lies beyond the end of ${path} (${size} bytes)`,
        );
      }
      return guarded('sha256File', () => ops.sha256File(path, offset, length, signal));
    },

    async sha256FileChunks(path, chunkSize, opts) {
      checkPath(path, 'path');
      checkSize(chunkSize, 'chunkSize');
      if (chunkSize === 0) throw new RangeError('chunkSize must be positive');
      const o = checkOptions<Sha256FileChunksOptions>(opts);
      const offset = o.offset === undefined ? 0 : checkSize(o.offset, 'offset');
      const signal = checkSignal(o.signal);
      const ops = getOps();
      const size = await sizeOf(path, 'path');
      if (offset > size) {
        throw new RangeError(`offset ${offset} lies beyond the end of ${path} (${size} bytes)`);
      }
      return guarded('sha256FileChunks', () =>
        ops.sha256FileChunks(path, offset, chunkSize, signal),
      );
    },
  };
}
