import { createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fileSha256, tempDir } from '../test-helpers.js';
import { sealFile } from './sealedBlob.js';
import {
  describeSealedFile,
  openSealedFile,
  SEALED_FILE_MAC_INFO,
  type SealedFileManifest,
  validateSealedFileManifest,
} from './sealedFileManifest.js';

let dir: string;
const key = randomBytes(32);
const plain = randomBytes(5000);
let manifest: SealedFileManifest;

beforeAll(async () => {
  dir = await tempDir();
  await writeFile(join(dir, 'plain'), plain);
  await sealFile(join(dir, 'plain'), join(dir, 'sealed'), key);
  manifest = await describeSealedFile(join(dir, 'plain'), join(dir, 'sealed'), key);
});

/** Whether `k` passes the PKCS#7 check of the sealed file (a wrong key does about 1 in 256). */
function paddingPasses(blob: Buffer, k: Buffer): boolean {
  const d = createDecipheriv('aes-256-cbc', k, blob.subarray(blob.length - 32, blob.length - 16));
  try {
    d.update(blob.subarray(blob.length - 16));
    d.final();
    return true;
  } catch {
    return false;
  }
}

describe('sealed-file manifest', () => {
  it('records sizes, the sealed SHA-256 and an HMAC of the plaintext under the HKDF of the key', async () => {
    const macKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), SEALED_FILE_MAC_INFO, 32));
    expect(manifest).toEqual({
      format: 'sluice-sealed-file-v1',
      algorithm: 'AES-256-CBC',
      plainSize: 5000,
      blobSize: 5024,
      blobSha256: await fileSha256(join(dir, 'sealed')),
      plainMac: createHmac('sha256', macKey).update(plain).digest('hex'),
    });
    expect(validateSealedFileManifest(JSON.parse(JSON.stringify(manifest)))).toEqual(manifest);
    for (const bad of [
      { ...manifest, extra: 1 },
      { ...manifest, format: 'sluice-sealed-file-v2' },
      { ...manifest, blobSize: 5040 },
      { ...manifest, plainMac: 'AB'.repeat(32) },
      null,
    ]) {
      expect(() => validateSealedFileManifest(bad)).toThrow(
        expect.objectContaining({ code: 'ERR_BAD_MANIFEST' }),
      );
    }
  });

  it('the right key opens it', async () => {
    const out = join(dir, 'right.out');
    expect(await openSealedFile(join(dir, 'sealed'), out, key, manifest)).toEqual({ size: 5000 });
    expect((await readFile(out)).equals(plain)).toBe(true);
  });

  it('every wrong key is ERR_BAD_DECRYPT with nothing written, also those that pass the padding check', async () => {
    const blob = await readFile(join(dir, 'sealed'));
    let passedPadding = 0;
    let tried = 0;
    while (passedPadding < 2 || tried < 50) {
      const wrong = randomBytes(32);
      tried++;
      if (paddingPasses(blob, wrong)) passedPadding++;
      await expect(
        openSealedFile(join(dir, 'sealed'), join(dir, 'wrong.out'), wrong, manifest),
      ).rejects.toMatchObject({
        code: 'ERR_BAD_DECRYPT',
        message: expect.stringMatching(/^wrong key for /),
      });
      expect(tried).toBeLessThan(20_000);
    }
    expect(passedPadding).toBeGreaterThanOrEqual(2);
    expect((await readdir(dir)).filter((f) => f.includes('wrong'))).toEqual([]);
  });

  it('a damaged or replaced sealed file is ERR_BAD_BLOB before any decryption', async () => {
    const blob = await readFile(join(dir, 'sealed'));
    blob[100] = (blob[100] ?? 0) ^ 1;
    await writeFile(join(dir, 'damaged'), blob);
    await writeFile(join(dir, 'short'), blob.subarray(0, 4992));
    for (const src of ['damaged', 'short']) {
      await expect(
        openSealedFile(join(dir, src), join(dir, `${src}.out`), key, manifest),
      ).rejects.toMatchObject({ code: 'ERR_BAD_BLOB' });
    }
    expect((await readdir(dir)).filter((f) => f.endsWith('.out'))).toEqual(['right.out']);
  });
});
