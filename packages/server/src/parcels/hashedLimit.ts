import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { SluiceError } from '@sluice/protocol';

/** Passes bytes through, hashing them, and fails with 413 once more than `limit` have passed. */
export class HashedLimit extends Transform {
  private readonly hash = createHash('sha256');
  private seen = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      done(new SluiceError('ERR_TOO_LARGE', `parcel exceeds ${this.limit} bytes`));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }
  digest(): string {
    return this.hash.digest('hex');
  }
}
