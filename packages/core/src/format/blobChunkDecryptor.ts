import { checkKey, checkSize, type Manifest, SluiceError, toBytes } from '@sluice/protocol';
import { type CryptoBackend, cryptoBackend } from '../crypto/cryptoBackend.js';
import { checkBlobSize } from './sealedBlob.js';

/** Plaintext bytes produced by a push: write `data` at plaintext offset `offset`. */
export interface PlainPiece {
  offset: number;
  data: Buffer;
}

interface Segment {
  lo: number;
  hi: number;
  /** The first and last (up to) 32 bytes: enough for every block whose window crosses an edge. */
  head: Buffer;
  tail: Buffer;
}

const B = 16;
const alignUp = (n: number) => Math.ceil(n / B) * B;
const alignDown = (n: number) => Math.floor(n / B) * B;

/** Blob offset of big-part chunk `index` (the big part starts at blob offset smallSize). */
export function chunkBlobOffset(manifest: Manifest, index: number): number {
  return manifest.smallSize + index * manifest.chunkSize;
}

/**
 * Decrypts a sealed blob from pieces that arrive in any order (the small part, then big-part
 * chunks as the CDN delivers them). The blob block at offset o (o ≥ 16, o % 16 = 0) decrypts
 * with the 16 blob bytes before it, i.e. it needs the window [o − 16, o + 16). A piece decrypts
 * every block whose window lies inside it at once; it keeps only its first and last 32 bytes,
 * and the (at most two per edge) blocks whose window crosses a piece edge are decrypted when the
 * neighbouring piece arrives. The small part and big chunks may start at any offset: nothing
 * needs to be 16-byte aligned. See docs/FORMAT.md, "Decrypting chunk by chunk".
 */
export class BlobChunkDecryptor {
  readonly blobSize: number;
  readonly #key: Buffer;
  readonly #backend: CryptoBackend;
  readonly #segments: Segment[] = [];
  readonly #totalBlocks: number;
  #doneBlocks = 0;
  #plainSize: number | undefined;

  constructor(blobSize: number, key: Buffer | Uint8Array, backend?: CryptoBackend) {
    checkSize(blobSize, 'blobSize');
    checkBlobSize(blobSize);
    this.blobSize = blobSize;
    this.#key = Buffer.from(checkKey(key));
    this.#backend = backend ?? cryptoBackend();
    this.#totalBlocks = (blobSize - B) / B;
  }

  /** True once every block has been decrypted and the padding verified. */
  get complete(): boolean {
    return this.#doneBlocks === this.#totalBlocks;
  }

  /** The plaintext size, known once the last block has been decrypted. */
  get plainSize(): number | undefined {
    return this.#plainSize;
  }

  /**
   * Accepts blob bytes [blobOffset, blobOffset + data.length); resolves with the plaintext now
   * decryptable. With `out` (at least `data.length` bytes), the bulk of that plaintext is
   * decrypted into it and the first piece is a view of `out`: write it before reusing `out`.
   */
  async push(blobOffset: number, data: Buffer | Uint8Array, out?: Buffer): Promise<PlainPiece[]> {
    checkSize(blobOffset, 'blobOffset');
    const bytes = toBytes(data, 'data');
    const lo = blobOffset;
    const hi = lo + bytes.length;
    if (hi > this.blobSize) {
      throw new RangeError(`bytes [${lo}, ${hi}) lie beyond the blob's ${this.blobSize} bytes`);
    }
    if (bytes.length === 0) return [];
    for (const s of this.#segments) {
      if (lo < s.hi && s.lo < hi) {
        throw new RangeError(`bytes [${lo}, ${hi}) overlap bytes [${s.lo}, ${s.hi}) pushed before`);
      }
    }
    const edge = Math.min(32, bytes.length);
    this.#segments.push({
      lo,
      hi,
      head: Buffer.from(bytes.subarray(0, edge)),
      tail: Buffer.from(bytes.subarray(bytes.length - edge)),
    });

    const pieces: PlainPiece[] = [];
    // Blocks whose whole window lies inside this piece.
    const first = alignUp(lo) + B;
    const end = alignDown(hi);
    if (end > first) {
      const ct = bytes.subarray(first - lo, end - lo);
      const prev = bytes.subarray(first - B - lo, first - lo);
      const into = out !== undefined && out.length >= ct.length ? out : undefined;
      pieces.push(await this.#decrypt(first, ct, prev, into));
    }
    // Blocks whose window crosses one of this piece's edges, if their other side is here now.
    const crossing = new Set<number>();
    for (const e of [lo, hi]) {
      for (let o = alignDown(e - B) + B; o < e + B; o += B) {
        if (o >= B && o <= this.blobSize - B && o - B < e && e < o + B) crossing.add(o);
      }
    }
    for (const o of [...crossing].sort((a, b) => a - b)) {
      const window = this.#read(o - B, o + B);
      if (window) pieces.push(await this.#decrypt(o, window.subarray(B), window.subarray(0, B)));
    }
    return pieces.filter((p) => p.data.length > 0);
  }

  /** Decrypts whole blocks starting at blob offset `at`; strips and checks padding at the end. */
  async #decrypt(at: number, ct: Buffer, prev: Buffer, out?: Buffer): Promise<PlainPiece> {
    let data = await this.#backend.decryptChunk(ct, prev, this.#key, out);
    this.#doneBlocks += ct.length / B;
    if (at + ct.length === this.blobSize) {
      const pad = data[data.length - 1] ?? 0;
      let ok = pad >= 1 && pad <= B;
      for (let i = data.length - pad; ok && i < data.length; i++) ok = data[i] === pad;
      if (!ok) {
        throw new SluiceError(
          'ERR_BAD_DECRYPT',
          'bad decrypt: invalid PKCS#7 padding in the last block',
        );
      }
      data = data.subarray(0, data.length - pad);
      this.#plainSize = this.blobSize - B - pad;
    }
    return { offset: at - B, data };
  }

  /** Blob bytes [a, b) from the kept piece edges, or undefined while part of it is missing. */
  #read(a: number, b: number): Buffer | undefined {
    const out = Buffer.alloc(b - a);
    let covered = 0;
    for (const s of this.#segments) {
      const x = Math.max(a, s.lo);
      const y = Math.min(b, s.hi);
      if (x >= y) continue;
      const tailStart = s.hi - s.tail.length;
      if (y <= s.lo + s.head.length) s.head.copy(out, x - a, x - s.lo, y - s.lo);
      else if (x >= tailStart) s.tail.copy(out, x - a, x - tailStart, y - tailStart);
      else return undefined; // cannot happen for a window that crosses this piece's edge
      covered += y - x;
    }
    return covered === b - a ? out : undefined;
  }
}
