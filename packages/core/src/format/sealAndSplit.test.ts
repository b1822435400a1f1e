import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { validateManifest } from '@sluice/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  fileSha256,
  IV,
  KEY,
  MiB,
  pattern,
  tempDir,
  tempFilesIn,
  writeRandomFile,
} from '../test-helpers.js';
import { joinAndOpen, sealAndSplit } from './sealAndSplit.js';
import { blobSize, sealBuffer } from './sealedBlob.js';
import { smallPartSize } from './smallPartSize.js';

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});

describe('sealAndSplit / joinAndOpen', () => {
  it('writes small, big and manifest files that reassemble to the sealed blob', async () => {
    const plain = pattern(200_000, 9);
    const src = join(dir, 'model.bin');
    await writeFile(src, plain);
    const out = join(dir, 'out');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(out);
    const r = await sealAndSplit(src, {
      dir: out,
      smallSizeKB: 16,
      chunkSize: 65_536,
      key: KEY,
      iv: IV,
    });
    expect(r.smallPath).toBe(join(out, 'model.bin.small'));
    expect(r.bigPath).toBe(join(out, 'model.bin.big'));
    expect(r.manifestPath).toBe(join(out, 'model.bin.manifest.json'));
    expect((await readdir(out)).sort()).toEqual([
      'model.bin.big',
      'model.bin.manifest.json',
      'model.bin.small',
    ]);
    const blob = sealBuffer(plain, KEY, IV);
    const small = await readFile(r.smallPath);
    const big = await readFile(r.bigPath);
    expect(Buffer.concat([small, big]).equals(blob)).toBe(true);
    expect(small.length).toBe(smallPartSize(blobSize(plain.length), 16));
    expect(small.length).toBe(16 * 1024);
    const manifest = validateManifest(JSON.parse(await readFile(r.manifestPath as string, 'utf8')));
    expect(manifest).toEqual(r.manifest);
    expect(manifest.chunks).toEqual(
      [0, 1, 2].map((k) =>
        createHash('sha256')
          .update(big.subarray(k * 65_536, (k + 1) * 65_536))
          .digest('hex'),
      ),
    );
    const back = join(dir, 'model.back');
    expect(await joinAndOpen(r.smallPath, r.bigPath, back, r.key)).toEqual({ size: plain.length });
    expect((await readFile(back)).equals(plain)).toBe(true);
    expect(await tempFilesIn(dir)).toEqual([]);
    expect(await tempFilesIn(out)).toEqual([]);
  });

  it('draws a fresh random key and IV by default; explicit paths skip the manifest file', async () => {
    const src = join(dir, 'r.bin');
    const sha = await writeRandomFile(src, MiB + 3);
    const paths = { small: join(dir, 'r.s'), big: join(dir, 'r.b') };
    const a = await sealAndSplit(src, { paths, smallSizeKB: 64 });
    const b = await sealAndSplit(src, {
      paths: { small: join(dir, 'r2.s'), big: join(dir, 'r2.b') },
      smallSizeKB: 64,
    });
    expect(a.key.length).toBe(32);
    expect(a.iv.length).toBe(16);
    expect(a.key.equals(b.key)).toBe(false);
    expect(a.iv.equals(b.iv)).toBe(false);
    expect(a.manifestPath).toBeUndefined();
    expect(a.manifest.chunkSize).toBe(8 * MiB);
    await joinAndOpen(paths.small, paths.big, join(dir, 'r.back'), a.key);
    expect(await fileSha256(join(dir, 'r.back'))).toBe(sha);
    await expect(
      joinAndOpen(paths.small, paths.big, join(dir, 'r.bad'), b.key),
    ).rejects.toMatchObject({
      code: 'ERR_BAD_DECRYPT',
    });
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it('validates its options', async () => {
    const src = join(dir, 'model.bin');
    await expect(sealAndSplit(src, { smallSizeKB: 1 })).rejects.toThrow(TypeError);
    await expect(sealAndSplit(src, { dir, smallSizeKB: 0 })).rejects.toThrow(RangeError);
    await expect(sealAndSplit(src, { dir, smallSizeKB: 1, chunkSize: 100 })).rejects.toThrow(
      RangeError,
    );
    await expect(sealAndSplit(src, { dir, smallSizeKB: 1, key: Buffer.alloc(16) })).rejects.toThrow(
      RangeError,
    );
  });
});
