import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openFile, sealFile } from '../format/sealedBlob.js';
import { hex, IV, KEY, MiB, openssl, pattern, tempDir } from '../test-helpers.js';
import { decryptFile, encryptFile } from './cryptoBackend.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});

const K = ['-K', hex(KEY), '-iv', hex(IV)];

describe.each([0, 1, 15, 16, 17, MiB + 3])('openssl enc interop, %i bytes', (size) => {
  const plain = pattern(size, 7);

  it('sluice encryptFile → openssl enc -d, and sealed blob → tail -c +17 | openssl', async () => {
    const src = join(dir, `o-src-${size}`);
    await writeFile(src, plain);
    const enc = join(dir, `o-enc-${size}`);
    await encryptFile(src, enc, KEY, IV);
    expect(openssl(['enc', '-d', '-aes-256-cbc', ...K, '-in', enc]).equals(plain)).toBe(true);
    const blob = join(dir, `o-blob-${size}`);
    await sealFile(src, blob, KEY, { iv: IV });
    const withoutIv = (await readFile(blob)).subarray(16);
    expect(openssl(['enc', '-d', '-aes-256-cbc', ...K], withoutIv).equals(plain)).toBe(true);
  });

  it('openssl enc -e → sluice decryptFile and openFile', async () => {
    const src = join(dir, `e-src-${size}`);
    const enc = join(dir, `e-enc-${size}`);
    await writeFile(src, plain);
    openssl(['enc', '-e', '-aes-256-cbc', ...K, '-in', src, '-out', enc]);
    const dec = join(dir, `e-dec-${size}`);
    await decryptFile(enc, dec, KEY, IV);
    expect((await readFile(dec)).equals(plain)).toBe(true);
    const blob = join(dir, `e-blob-${size}`);
    await writeFile(blob, Buffer.concat([IV, await readFile(enc)]));
    const opened = join(dir, `e-open-${size}`);
    await openFile(blob, opened, KEY);
    expect((await readFile(opened)).equals(plain)).toBe(true);
  });
});
