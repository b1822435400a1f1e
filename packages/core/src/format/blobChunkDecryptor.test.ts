import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chunkLength } from '@sluice/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectSluiceError, IV, KEY, pattern, tempDir } from '../test-helpers.js';
import { BlobChunkDecryptor, chunkBlobOffset, type PlainPiece } from './blobChunkDecryptor.js';
import { verifyChunk } from './manifest.js';
import { sealAndSplit } from './sealAndSplit.js';
import { sealBuffer } from './sealedBlob.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});

function assemble(pieces: PlainPiece[], size: number): Buffer {
  const out = Buffer.alloc(size);
  const written = new Uint8Array(size);
  for (const p of pieces) {
    p.data.copy(out, p.offset);
    for (let i = p.offset; i < p.offset + p.data.length; i++) {
      if (written[i] !== 0) throw new Error(`plaintext byte ${i} emitted twice`);
      written[i] = 1;
    }
  }
  expect(written.indexOf(0)).toBe(-1);
  return out;
}

/** Deterministic shuffle so failures reproduce. */
function shuffled<T>(items: T[], seed: number): T[] {
  const a = [...items];
  let s = seed;
  for (let i = a.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

describe('decrypting a blob chunk by chunk from the small and big parts', () => {
  // smallSize mod 16: 9 → 9, 14, 1024 → 0, 30004 → 4 (all through the real split rule).
  it.each([
    [0, 1, 16],
    [20, 1, 16],
    [1000, 1, 32],
    [5000, 1, 4096],
    [100_000, 64, 16],
    [100_000, 64, 8192],
    [100_001, 2, 48],
  ])(
    'plain %i bytes, smallSizeKB %i, chunkSize %i — in order and shuffled',
    async (size, kb, chunkSize) => {
      const plain = pattern(size, size % 251);
      const src = join(dir, `cd-${size}-${kb}-${chunkSize}`);
      await writeFile(src, plain);
      const r = await sealAndSplit(src, { dir, smallSizeKB: kb, chunkSize, key: KEY, iv: IV });
      const m = r.manifest;
      const small = await readFile(r.smallPath);
      const big = await readFile(r.bigPath);
      expect(small.length).toBe(m.smallSize);
      const parts: [number, Buffer][] = [[0, small]];
      for (let k = 0; k < m.chunks.length; k++) {
        const from = k * m.chunkSize;
        const data = big.subarray(from, from + chunkLength(m, k));
        verifyChunk(m, k, data);
        parts.push([chunkBlobOffset(m, k), data]);
      }
      for (const order of [parts, shuffled(parts, size + chunkSize), [...parts].reverse()]) {
        const d = new BlobChunkDecryptor(m.blobSize, r.key);
        const pieces: PlainPiece[] = [];
        for (const [offset, data] of order) {
          expect(d.complete).toBe(false);
          pieces.push(...(await d.push(offset, data)));
        }
        expect(d.complete).toBe(true);
        expect(d.plainSize).toBe(size);
        expect(assemble(pieces, size).equals(plain)).toBe(true);
      }
    },
  );

  it('is not complete until every piece arrived, and rejects overlaps and out-of-range bytes', async () => {
    const blob = sealBuffer(pattern(100), KEY, IV);
    const d = new BlobChunkDecryptor(blob.length, KEY);
    await d.push(0, blob.subarray(0, 37));
    await d.push(69, blob.subarray(69));
    expect(d.complete).toBe(false);
    await expect(d.push(30, blob.subarray(30, 40))).rejects.toThrow(/overlap/);
    await expect(d.push(100, Buffer.alloc(100))).rejects.toThrow(RangeError);
    await d.push(37, blob.subarray(37, 69));
    expect(d.complete).toBe(true);
  });

  it('a wrong key shows up as ERR_BAD_DECRYPT when the last block is decrypted', async () => {
    const blob = sealBuffer(pattern(1000), KEY, IV);
    const d = new BlobChunkDecryptor(blob.length, Buffer.alloc(32, 0x5a));
    await d.push(0, blob.subarray(0, 500));
    await expectSluiceError(d.push(500, blob.subarray(500)), 'ERR_BAD_DECRYPT');
  });

  it('rejects an impossible blob size', () => {
    expect(() => new BlobChunkDecryptor(17, KEY)).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_BLOB' }),
    );
  });
});

describe('decrypting into a caller buffer', () => {
  it('puts the bulk of each push into `out` (a reusable buffer) with the same plaintext', async () => {
    const plain = pattern(70_000, 7);
    const blob = await sealBuffer(plain, KEY, IV);
    const d = new BlobChunkDecryptor(blob.length, KEY);
    const out = Buffer.alloc(16_384);
    const seen: Buffer[] = [];
    const copies: PlainPiece[] = [];
    for (let at = 0; at < blob.length; at += 16_384) {
      const pieces = await d.push(at, blob.subarray(at, at + 16_384), out);
      for (const p of pieces) {
        if (p.data.buffer === out.buffer) seen.push(p.data);
        copies.push({ offset: p.offset, data: Buffer.from(p.data) }); // before `out` is reused
      }
    }
    expect(d.complete).toBe(true);
    expect(seen.length).toBeGreaterThan(3);
    expect(assemble(copies, plain.length).equals(plain)).toBe(true);
  });
});
