import { createCipheriv } from 'node:crypto';

/**
 * A small deterministic generator (sfc32) for the randomized tests: the same seed gives the same
 * cases on every machine, so a failure printed with its seed can be replayed exactly.
 */
export class SeededRandom {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** `parts` are mixed into the state: (run seed, case index) gives each case its own stream. */
  constructor(...parts: number[]) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = 1;
    for (const p of parts) {
      this.#a ^= p >>> 0;
      this.#b ^= Math.floor(p / 2 ** 32) >>> 0;
      for (let i = 0; i < 12; i++) this.u32();
    }
  }

  /** Uniform in [0, 2^32). */
  u32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** Uniform integer in [lo, hi] (inclusive, hi - lo < 2^32). */
  int(lo: number, hi: number): number {
    return lo + Math.floor((this.u32() / 2 ** 32) * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.u32() / 2 ** 32 < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(0, items.length - 1)];
    if (item === undefined) throw new RangeError('pick from an empty list');
    return item;
  }

  /** `n` pseudo-random bytes (small ones word by word, bigger ones as an AES-256-CTR keystream). */
  bytes(n: number): Buffer {
    if (n <= 64) {
      const out = Buffer.alloc(n);
      for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
      return out;
    }
    const seed = Buffer.alloc(48);
    for (let i = 0; i < 48; i += 4) seed.writeUInt32LE(this.u32(), i);
    const ctr = createCipheriv('aes-256-ctr', seed.subarray(0, 32), seed.subarray(32));
    return ctr.update(Buffer.alloc(n));
  }
}
