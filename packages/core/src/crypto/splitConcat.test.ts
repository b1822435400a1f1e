import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { MiB, pattern, tempDir, tempFilesIn } from '../test-helpers.js';
import { concat, sha256, sha256File, sha256FileChunks, split } from './cryptoBackend.js';

let dir: string;
const data = pattern(9 * MiB + 123, 77);
const sha = (b: Buffer) => createHash('sha256').update(b).digest();

beforeAll(async () => {
  dir = await tempDir();
  await writeFile(join(dir, 'src'), data);
});

describe('split and concat', () => {
  it.each([0, 1, 4096, 9 * MiB + 123])('split at %i then concat restores the file', async (at) => {
    const small = join(dir, `s${at}`);
    const big = join(dir, `b${at}`);
    await split(join(dir, 'src'), small, big, at);
    expect((await readFile(small)).equals(data.subarray(0, at))).toBe(true);
    expect((await readFile(big)).equals(data.subarray(at))).toBe(true);
    const joined = join(dir, `j${at}`);
    await concat([small, big], joined);
    expect((await readFile(joined)).equals(data)).toBe(true);
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it('concat of no files is an empty file; of several keeps the order', async () => {
    const empty = join(dir, 'empty');
    await concat([], empty);
    expect((await readFile(empty)).length).toBe(0);
    await writeFile(join(dir, 'x'), 'x');
    await writeFile(join(dir, 'y'), 'yy');
    await concat([join(dir, 'y'), join(dir, 'x'), join(dir, 'y')], join(dir, 'yxy'));
    expect(await readFile(join(dir, 'yxy'), 'utf8')).toBe('yyxyy');
  });

  it('a missing input → ERR_IO and the destination untouched', async () => {
    await writeFile(join(dir, 'keep'), 'keep');
    await expect(
      concat([join(dir, 'x'), join(dir, 'missing')], join(dir, 'keep')),
    ).rejects.toMatchObject({
      code: 'ERR_IO',
    });
    expect(await readFile(join(dir, 'keep'), 'utf8')).toBe('keep');
    expect(await tempFilesIn(dir)).toEqual([]);
  });
});

describe('SHA-256', () => {
  it('sha256 and sha256File (whole, offset, offset+length) agree with node:crypto', async () => {
    const p = join(dir, 'src');
    expect((await sha256(data)).equals(sha(data))).toBe(true);
    expect((await sha256File(p)).equals(sha(data))).toBe(true);
    expect((await sha256File(p, { offset: 5 })).equals(sha(data.subarray(5)))).toBe(true);
    expect(
      (await sha256File(p, { offset: 8 * MiB - 1, length: MiB + 7 })).equals(
        sha(data.subarray(8 * MiB - 1, 9 * MiB + 6)),
      ),
    ).toBe(true);
    expect((await sha256File(p, { offset: data.length })).equals(sha(Buffer.alloc(0)))).toBe(true);
    expect((await sha256File(p, { offset: 3, length: 0 })).equals(sha(Buffer.alloc(0)))).toBe(true);
  });

  it.each([16, 1000, MiB, 3 * MiB + 16, 8 * MiB, 16 * MiB])(
    'sha256FileChunks with chunkSize %i',
    async (chunkSize) => {
      const p = join(dir, 'src');
      // Tiny chunks over 9 MiB would make ~600k digests; hash only the tail for those.
      for (const offset of chunkSize < 4096 ? [data.length - 70_001] : [0, 17]) {
        const got = await sha256FileChunks(p, chunkSize, { offset });
        const tail = data.subarray(offset);
        const want: Buffer[] = [];
        for (let at = 0; at < tail.length; at += chunkSize)
          want.push(sha(tail.subarray(at, at + chunkSize)));
        expect(got.length).toBe(want.length);
        for (const [i, d] of got.entries()) {
          expect(d.equals(want[i] as Buffer), `chunk ${i}`).toBe(true);
        }
      }
    },
  );

  it('sha256FileChunks of an empty range is no chunks', async () => {
    await writeFile(join(dir, 'e'), '');
    expect(await sha256FileChunks(join(dir, 'e'), 16)).toEqual([]);
    expect(await sha256FileChunks(join(dir, 'src'), 16, { offset: data.length })).toEqual([]);
  });
});
