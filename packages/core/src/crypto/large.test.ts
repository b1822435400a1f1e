import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openFile, sealFile } from '../format/sealedBlob.js';
import {
  fileSha256,
  IV,
  KEY,
  MiB,
  tempDir,
  tempFilesIn,
  writeRandomFile,
} from '../test-helpers.js';
import { decryptFile, encryptFile, sha256File } from './cryptoBackend.js';

// ~300 MiB file → file; compares SHA-256s instead of holding copies in memory.
const SIZE = 300 * MiB + 11;

let dir: string;
let src: string;
let plainSha: string;
beforeAll(async () => {
  dir = await tempDir();
  src = join(dir, 'large');
  plainSha = await writeRandomFile(src, SIZE);
}, 300_000);

describe('a ~300 MiB file', () => {
  it('encryptFile → decryptFile (threads 1, 2, 3) restores it', async () => {
    const enc = join(dir, 'large.enc');
    const r = await encryptFile(src, enc, KEY, IV);
    expect(r).toEqual({ bytesRead: SIZE, bytesWritten: SIZE - (SIZE % 16) + 16 });
    for (const threads of [1, 2, 3]) {
      const dec = join(dir, `large.dec${threads}`);
      expect((await decryptFile(enc, dec, KEY, IV, { threads })).bytesWritten).toBe(SIZE);
      expect(await fileSha256(dec)).toBe(plainSha);
      expect((await sha256File(dec)).toString('hex')).toBe(plainSha);
    }
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it('sealFile → openFile restores it', async () => {
    const blob = join(dir, 'large.blob');
    const { size } = await sealFile(src, blob, KEY, { iv: IV });
    expect((await stat(blob)).size).toBe(size);
    const out = join(dir, 'large.opened');
    await openFile(blob, out, KEY, { threads: 2 });
    expect(await fileSha256(out)).toBe(plainSha);
  });
});
