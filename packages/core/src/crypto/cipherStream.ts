import { Transform, type TransformCallback } from 'node:stream';
import { toSluiceError } from '../platform/toSluiceError.js';
import type { CipherOps } from './backendOps.js';

/**
 * A Transform over an imperative update()/final() pair (node's Cipheriv or the binding's
 * CipherContext). A padding failure in final() reaches the caller as an 'error' event carrying
 * SluiceError ERR_BAD_DECRYPT; the bytes held back for the padding check are never emitted.
 */
export class CipherStream extends Transform {
  readonly #ops: CipherOps;
  readonly #what: string;

  constructor(ops: CipherOps, what: string) {
    super();
    this.#ops = ops;
    this.#what = what;
  }

  override _transform(chunk: unknown, encoding: BufferEncoding, callback: TransformCallback): void {
    const data = Buffer.isBuffer(chunk)
      ? chunk
      : typeof chunk === 'string'
        ? Buffer.from(chunk, encoding)
        : chunk instanceof Uint8Array
          ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
          : undefined;
    if (!data) {
      callback(new TypeError(`${this.#what} stream accepts Buffer, Uint8Array or string chunks`));
      return;
    }
    this.#settle(() => this.#ops.update(data), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.#settle(() => this.#ops.final(), callback);
  }

  #settle(step: () => Buffer | Promise<Buffer>, callback: TransformCallback): void {
    let result: Buffer | Promise<Buffer>;
    try {
      result = step();
    } catch (e) {
      callback(toSluiceError(e, this.#what));
      return;
    }
    Promise.resolve(result).then(
      (out) => {
        if (out.length > 0) this.push(out);
        callback();
      },
      (e: unknown) => callback(toSluiceError(e, this.#what)),
    );
  }
}
