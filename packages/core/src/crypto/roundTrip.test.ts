import { createCipheriv, createDecipheriv } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { openBuffer, openFile, sealBuffer, sealFile } from '../format/sealedBlob.js';
import { IV, KEY, MiB, pattern, tempDir, tempFilesIn } from '../test-helpers.js';
import {
  createDecryptStream,
  createEncryptStream,
  decryptChunk,
  decryptFile,
  encryptFile,
} from './cryptoBackend.js';

const SIZES = [0, 1, 15, 16, 17, 8 * MiB - 1, 8 * MiB, 8 * MiB + 1];

function nodeEncrypt(plain: Buffer): Buffer {
  const c = createCipheriv('aes-256-cbc', KEY, IV);
  return Buffer.concat([c.update(plain), c.final()]);
}

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});

describe.each(SIZES)('round trip of %i bytes', (size) => {
  const plain = pattern(size, size);
  const expected = nodeEncrypt(plain);

  it('encryptFile equals node:crypto, decryptFile (threads 1, 2, 3) restores the plaintext', async () => {
    const src = join(dir, `plain-${size}`);
    const enc = join(dir, `enc-${size}`);
    await writeFile(src, plain);
    const r = await encryptFile(src, enc, KEY, IV);
    expect(r).toEqual({ bytesRead: size, bytesWritten: expected.length });
    expect((await readFile(enc)).equals(expected)).toBe(true);
    for (const threads of [1, 2, 3]) {
      const dec = join(dir, `dec-${size}-${threads}`);
      const d = await decryptFile(enc, dec, KEY, IV, { threads });
      expect(d).toEqual({ bytesRead: expected.length, bytesWritten: size });
      expect((await readFile(dec)).equals(plain)).toBe(true);
    }
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it('streams equal node:crypto in both directions, with uneven write sizes', async () => {
    const pieces: Buffer[] = [];
    for (let at = 0, step = 1; at < plain.length; at += step, step = step * 3 + 5) {
      pieces.push(plain.subarray(at, at + step));
    }
    const enc = await buffer(Readable.from(pieces).pipe(createEncryptStream(KEY, IV)));
    expect(enc.equals(expected)).toBe(true);
    const back = await buffer(
      Readable.from([expected.subarray(0, 7), expected.subarray(7)]).pipe(
        createDecryptStream(KEY, IV),
      ),
    );
    expect(back.equals(plain)).toBe(true);
  });

  it('sealFile/openFile and sealBuffer/openBuffer agree and round-trip', async () => {
    const src = join(dir, `seal-src-${size}`);
    await writeFile(src, plain);
    const blob = join(dir, `blob-${size}`);
    const { iv, size: blobBytes } = await sealFile(src, blob, KEY, { iv: IV });
    expect(iv.equals(IV)).toBe(true);
    const onDisk = await readFile(blob);
    expect(blobBytes).toBe(onDisk.length);
    expect(onDisk.equals(Buffer.concat([IV, expected]))).toBe(true);
    expect(onDisk.equals(sealBuffer(plain, KEY, IV))).toBe(true);
    expect(openBuffer(onDisk, KEY).equals(plain)).toBe(true);
    const out = join(dir, `opened-${size}`);
    expect(await openFile(blob, out, KEY)).toEqual({ size });
    expect((await readFile(out)).equals(plain)).toBe(true);
  });

  it('decryptChunk over the whole ciphertext yields plaintext ‖ padding', async () => {
    const raw = createDecipheriv('aes-256-cbc', KEY, IV).setAutoPadding(false);
    const want = Buffer.concat([raw.update(expected), raw.final()]);
    expect((await decryptChunk(expected, IV, KEY)).equals(want)).toBe(true);
    const out = Buffer.alloc(expected.length + 3);
    expect((await decryptChunk(expected, IV, KEY, out, { threads: 2 })).equals(want)).toBe(true);
  });
});

describe('parallel decryptFile above the worker threshold', () => {
  it.each([1, 2, 3])('40 MiB + 17 bytes with threads=%i', async (threads) => {
    const plain = pattern(40 * MiB + 17, 99);
    const src = join(dir, 'p40');
    const enc = join(dir, 'p40.enc');
    const dec = join(dir, `p40.dec.${threads}`);
    await writeFile(src, plain);
    await encryptFile(src, enc, KEY, IV);
    const r = await decryptFile(enc, dec, KEY, IV, { threads });
    expect(r.bytesWritten).toBe(plain.length);
    expect((await readFile(dec)).equals(plain)).toBe(true);
  });

  it('many concurrent parallel decryptions (more workers than the process-wide cap) all succeed', async () => {
    const plain = pattern(40 * MiB + 17, 99);
    const enc = join(dir, 'p40.enc');
    const outs = Array.from({ length: 5 }, (_, i) => join(dir, `p40.conc.${i}`));
    await Promise.all(outs.map((o) => decryptFile(enc, o, KEY, IV, { threads: 3 })));
    for (const o of outs) expect((await readFile(o)).equals(plain)).toBe(true);
  });

  it('stream encryption interoperates with file decryption via pipeline', async () => {
    const src = join(dir, 'pipe-src');
    const enc = join(dir, 'pipe-enc');
    const dec = join(dir, 'pipe-dec');
    const plain = pattern(3 * MiB + 5, 3);
    await writeFile(src, plain);
    await pipeline(createReadStream(src), createEncryptStream(KEY, IV), createWriteStream(enc));
    await decryptFile(enc, dec, KEY, IV);
    expect((await readFile(dec)).equals(plain)).toBe(true);
  });
});
