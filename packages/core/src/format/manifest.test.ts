import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isSluiceError, type Manifest, validateManifest } from '@sluice/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { pattern, tempDir } from '../test-helpers.js';
import { buildManifest, verifyChunk } from './manifest.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function base(): Manifest {
  return {
    version: 1,
    algorithm: 'AES-256-CBC',
    blobSize: 4112,
    smallSize: 1024,
    bigSize: 3088,
    chunkSize: 1024,
    chunks: ['a', 'b', 'c', 'd'].map((s) => sha(Buffer.from(s))),
  };
}

function expectBad(value: unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    validateManifest(value);
  } catch (e) {
    caught = e;
  }
  expect(isSluiceError(caught, 'ERR_BAD_MANIFEST'), String(caught)).toBe(true);
  expect((caught as Error).message).toMatch(pattern);
}

describe('buildManifest', () => {
  it('hashes each chunkSize slice of the big part; the last may be short', async () => {
    const big = pattern(10_000, 5);
    const path = join(dir, 'big');
    await writeFile(path, big);
    const m = await buildManifest(path, { smallSize: 4096, chunkSize: 4096 });
    expect(m).toEqual({
      version: 1,
      algorithm: 'AES-256-CBC',
      blobSize: 14_096,
      smallSize: 4096,
      bigSize: 10_000,
      chunkSize: 4096,
      chunks: [sha(big.subarray(0, 4096)), sha(big.subarray(4096, 8192)), sha(big.subarray(8192))],
    });
    expect(validateManifest(JSON.parse(JSON.stringify(m)))).toEqual(m);
  });

  it('exact multiple of chunkSize → no empty trailing chunk; default chunk size is 8 MiB', async () => {
    const path = join(dir, 'big2');
    await writeFile(path, pattern(3072));
    const m = await buildManifest(path, { smallSize: 1024, chunkSize: 1024 });
    expect(m.chunks).toHaveLength(3);
    const d = await buildManifest(path, { smallSize: 1024 });
    expect(d.chunkSize).toBe(8 * 1024 * 1024);
    expect(d.chunks).toEqual([sha(pattern(3072))]);
  });

  it('rejects a chunk size that is not a positive multiple of 16, and a missing file', async () => {
    const path = join(dir, 'big2');
    await expect(buildManifest(path, { smallSize: 1024, chunkSize: 1000 })).rejects.toThrow(
      RangeError,
    );
    await expect(buildManifest(path, { smallSize: 1024, chunkSize: 0 })).rejects.toThrow(
      RangeError,
    );
    // A small part that breaks the split rule makes an invalid manifest.
    await expect(buildManifest(path, { smallSize: 1000 })).rejects.toMatchObject({
      code: 'ERR_BAD_MANIFEST',
    });
    await expect(buildManifest(join(dir, 'nope'), { smallSize: 1 })).rejects.toMatchObject({
      code: 'ERR_IO',
    });
  });
});

describe('validateManifest', () => {
  it('accepts a consistent manifest and returns a clean copy', () => {
    const m = base();
    const v = validateManifest(m);
    expect(v).toEqual(m);
    expect(v.chunks).not.toBe(m.chunks);
  });

  it('names the problem precisely', () => {
    expectBad(null, /expected an object, got null/);
    expectBad([], /got an array/);
    expectBad('{}', /got string/);
    expectBad({ ...base(), extra: 1 }, /unknown field\(s\) extra/);
    expectBad({ ...base(), version: 3 }, /version must be 1 or 2, got 3/);
    expectBad({ ...base(), algorithm: 'AES-128-CBC' }, /algorithm must be "AES-256-CBC"/);
    expectBad(
      { ...base(), blobSize: '4112' },
      /blobSize must be a non-negative safe integer, got "4112"/,
    );
    expectBad({ ...base(), bigSize: -1 }, /bigSize must be a non-negative safe integer/);
    expectBad({ ...base(), chunkSize: 1.5 }, /chunkSize must be a non-negative safe integer/);
    expectBad(
      { ...base(), blobSize: 4113, bigSize: 3089 },
      /blobSize 4113 is not a sealed-blob size/,
    );
    expectBad({ ...base(), bigSize: 3072 }, /smallSize 1024 \+ bigSize 3072 != blobSize 4112/);
    expectBad(
      { ...base(), smallSize: 1000, bigSize: 3112 },
      /smallSize 1000 does not follow the split rule/,
    );
    expectBad(
      { ...base(), smallSize: 2048, bigSize: 2064 },
      /smallSize 2048 does not follow the split rule/,
    );
    expectBad(
      { ...base(), chunkSize: 1000 },
      /chunkSize must be a positive multiple of 16, got 1000/,
    );
    expectBad({ ...base(), chunkSize: 0 }, /chunkSize must be a positive multiple of 16, got 0/);
    expectBad({ ...base(), chunks: 'x' }, /chunks must be an array/);
    expectBad(
      { ...base(), chunks: base().chunks.slice(1) },
      /chunks has 3 digest\(s\) but bigSize 3088 \/ chunkSize 1024 needs 4/,
    );
    const upper = base();
    upper.chunks[2] = (upper.chunks[2] as string).toUpperCase();
    expectBad(upper, /chunks\[2\] must be 64 lower-case hex digits/);
    const short = base();
    short.chunks[0] = 'abcd';
    expectBad(short, /chunks\[0\] must be 64 lower-case hex digits/);
  });

  it('accepts the 30% cap when it is below smallSizeKB·1024 (not a multiple of 1024)', () => {
    expect(
      validateManifest({
        ...base(),
        blobSize: 48,
        smallSize: 14,
        bigSize: 34,
        chunkSize: 16,
        chunks: ['a', 'b', 'c'].map((s) => sha(Buffer.from(s))),
      }).smallSize,
    ).toBe(14);
  });
});

describe('verifyChunk', () => {
  const data = pattern(3088, 2);
  const m: Manifest = {
    ...base(),
    chunks: [0, 1, 2, 3].map((k) => sha(data.subarray(k * 1024, (k + 1) * 1024))),
  };

  it('accepts each correct chunk, including the short last one', () => {
    for (let k = 0; k < 4; k++) verifyChunk(m, k, data.subarray(k * 1024, (k + 1) * 1024));
    expect(data.subarray(3072).length).toBe(16);
  });

  it('a changed byte or a wrong length → ERR_CHUNK_DIGEST naming the index', () => {
    const tampered = Buffer.from(data.subarray(1024, 2048));
    tampered[500] = (tampered[500] ?? 0) ^ 1;
    expect(() => verifyChunk(m, 1, tampered)).toThrow(
      expect.objectContaining({
        code: 'ERR_CHUNK_DIGEST',
        message: expect.stringMatching(/^chunk 1: SHA-256 /),
      }),
    );
    expect(() => verifyChunk(m, 2, data.subarray(0, 1024))).toThrow(/^chunk 2: SHA-256/);
    expect(() => verifyChunk(m, 3, data.subarray(3072, 3087))).toThrow(
      expect.objectContaining({
        code: 'ERR_CHUNK_DIGEST',
        message: 'chunk 3: expected 16 bytes, got 15',
      }),
    );
  });

  it('an index out of range is a RangeError', () => {
    expect(() => verifyChunk(m, 4, Buffer.alloc(16))).toThrow(RangeError);
    expect(() => verifyChunk(m, -1, Buffer.alloc(16))).toThrow(RangeError);
  });
});
