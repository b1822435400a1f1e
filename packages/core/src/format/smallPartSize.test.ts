import { describe, expect, it } from 'vitest';
import { blobSize } from './sealedBlob.js';
import { smallPartSize, thirtyPercent } from './smallPartSize.js';

describe('split rule', () => {
  it.each([
    // [blobSize, smallSizeKB, smallSize]
    [32, 1, 9], // ⌊9.6⌋: the small part does not even hold the whole IV
    [48, 64, 14],
    [1040, 1, 312],
    [4096, 1, 1024], // 30% = 1228 > 1024
    [3424, 1, 1024], // ⌊1027.2⌋ > 1024
    [3408, 1, 1022], // ⌊1022.4⌋ < 1024
    [100_016, 64, 30_004],
    [1_048_592, 64, 65_536],
    [8_589_934_608, 1024, 1_048_576],
  ])('blobSize %i, smallSizeKB %i → %i', (blob, kb, small) => {
    expect(smallPartSize(blob, kb)).toBe(small);
  });

  it('uses exact integer arithmetic, also where n·3 exceeds 2^53', () => {
    for (let n = 0; n < 5000; n++) expect(thirtyPercent(n)).toBe(Math.floor((n * 3) / 10));
    for (const n of [
      Number.MAX_SAFE_INTEGER,
      Number.MAX_SAFE_INTEGER - 6,
      2 ** 52 + 7,
      3_002_399_751_580_331,
    ]) {
      expect(BigInt(thirtyPercent(n))).toBe((BigInt(n) * 3n) / 10n);
    }
  });

  it('blobSize(plain) = 16 + (⌊plain/16⌋ + 1)·16', () => {
    expect([0, 1, 15, 16, 17, 31, 32].map(blobSize)).toEqual([32, 32, 32, 48, 48, 48, 64]);
    expect(blobSize(8 * 1024 * 1024)).toBe(8 * 1024 * 1024 + 32);
  });

  it('rejects bad arguments', () => {
    expect(() => smallPartSize(-1, 1)).toThrow(RangeError);
    expect(() => smallPartSize(100, 0)).toThrow(RangeError);
    expect(() => smallPartSize(100, 1.5)).toThrow(RangeError);
    expect(() => smallPartSize('100' as never, 1)).toThrow(TypeError);
  });
});
