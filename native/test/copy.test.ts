import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { binding, MiB, patternBytes, small, tempDir } from './helpers.js';

const b = binding();
const tmp = tempDir();
afterAll(() => tmp.cleanup());

const sha = (d: Buffer) => createHash('sha256').update(d).digest();

describe('split / concat', () => {
  const size = 3 * MiB + 17;
  const data = patternBytes(size, 21);
  const src = tmp.file('split-src');
  writeFileSync(src, data);

  for (const smallSize of [0, 1, 16, 1024 * 1024, size - 1, size, size + 100]) {
    it(`splits at ${smallSize} and concatenates back byte-exact`, async () => {
      const s = tmp.file(`small-${smallSize}`);
      const g = tmp.file(`big-${smallSize}`);
      // Stale, longer outputs must be replaced, not overwritten in place.
      writeFileSync(s, Buffer.alloc(size + 500, 1));
      writeFileSync(g, Buffer.alloc(size + 500, 1));
      await b.split(src, s, g, smallSize);
      const cut = Math.min(smallSize, size);
      expect(readFileSync(s).equals(data.subarray(0, cut))).toBe(true);
      expect(readFileSync(g).equals(data.subarray(cut))).toBe(true);
      const joined = tmp.file(`joined-${smallSize}`);
      writeFileSync(joined, Buffer.alloc(size + 500, 2));
      await b.concat([s, g], joined);
      expect(readFileSync(joined).equals(data)).toBe(true);
    });
  }

  it('concatenates many parts, empty ones included, and nothing at all', async () => {
    const parts = [0, 5, 0, 4096, 1, 70_000].map((n, i) => {
      const p = tmp.file(`part-${i}`);
      writeFileSync(p, patternBytes(n, i + 1));
      return p;
    });
    const dst = tmp.file('many');
    await b.concat(parts, dst);
    expect(readFileSync(dst).equals(Buffer.concat(parts.map((p) => readFileSync(p))))).toBe(true);
    await b.concat([], dst);
    expect(readFileSync(dst).length).toBe(0);
  });

  it('falls back to read/write across filesystems (tmpfs → tmpdir)', async (ctx) => {
    if (!existsSync('/dev/shm')) ctx.skip();
    const shm = mkdtempSync('/dev/shm/sluice-native-');
    try {
      const other = join(shm, 'src');
      writeFileSync(other, data);
      const s = tmp.file('xfs-small');
      const g = tmp.file('xfs-big');
      await b.split(other, s, g, 1000);
      expect(readFileSync(s).equals(data.subarray(0, 1000))).toBe(true);
      expect(readFileSync(g).equals(data.subarray(1000))).toBe(true);
      const joined = join(shm, 'joined');
      await b.concat([s, g], joined);
      expect(readFileSync(joined).equals(data)).toBe(true);
    } finally {
      rmSync(shm, { recursive: true, force: true });
    }
  });

  it('refuses to write over one of its own inputs', async () => {
    const victim = tmp.file('victim');
    writeFileSync(victim, data);
    await expect(b.concat([src, victim], victim)).rejects.toMatchObject({
      code: 'ERR_IO',
      errno: 22,
      path: victim,
    });
    await expect(b.split(victim, tmp.file('s2'), victim, 10)).rejects.toMatchObject({
      code: 'ERR_IO',
      path: victim,
    });
    expect(readFileSync(victim).equals(data)).toBe(true);
  });

  it('reports a missing input as ERR_IO with its path and leaves dst alone', async () => {
    const missing = tmp.file('missing-part');
    const keep = tmp.file('keep');
    writeFileSync(keep, 'previous');
    await expect(b.concat([src, missing], keep)).rejects.toMatchObject({ code: 'ERR_IO' });
    expect(readFileSync(keep, 'utf8')).toBe('previous');
    await expect(b.concat([src, missing], tmp.file('c'))).rejects.toMatchObject({
      code: 'ERR_IO',
      syscall: 'open',
      errno: 2,
      path: missing,
    });
    await expect(b.split(missing, tmp.file('s'), tmp.file('g'), 4)).rejects.toMatchObject({
      code: 'ERR_IO',
      path: missing,
    });
  });
});

describe('sha256File / sha256FileChunks', () => {
  const size = (small ? 9 : 33) * MiB + 123;
  const data = patternBytes(size, 77);
  const file = tmp.file('hash-src');
  writeFileSync(file, data);

  it('hashes ranges like node:crypto', async () => {
    const cases: [number, number][] = [
      [0, -1],
      [16, -1],
      [0, 0],
      [5, 1000],
      [size - 1, -1],
      [size, -1],
      [7, size - 7],
    ];
    for (const [offset, length] of cases) {
      const end = length < 0 ? size : offset + length;
      const expected = sha(data.subarray(offset, end));
      expect((await b.sha256File(file, offset, length)).equals(expected)).toBe(true);
    }
  });

  it('hashes each chunk, the last one short', async () => {
    for (const [offset, chunk] of [
      [0, 8 * MiB],
      [16, 8 * MiB],
      [3, 1 * MiB + 1],
      [0, size],
      [0, size + 1],
    ] as const) {
      const digests = await b.sha256FileChunks(file, offset, chunk);
      const expected: Buffer[] = [];
      for (let off = offset; off < size; off += chunk) {
        expected.push(sha(data.subarray(off, Math.min(off + chunk, size))));
      }
      expect(digests.length).toBe(expected.length);
      for (const [i, d] of digests.entries()) {
        expect(d.equals(expected[i] as Buffer)).toBe(true);
      }
    }
    expect(await b.sha256FileChunks(file, size, MiB)).toEqual([]);
  });

  it('rejects a zero chunk size instead of crashing', async () => {
    await expect(b.sha256FileChunks(file, 0, 0)).rejects.toMatchObject({
      code: 'ERR_IO',
      errno: 22,
    });
  });

  it('reports a missing file as ERR_IO', async () => {
    const missing = tmp.file('nope');
    await expect(b.sha256File(missing, 0, -1)).rejects.toMatchObject({
      code: 'ERR_IO',
      path: missing,
    });
    await expect(b.sha256FileChunks(missing, 0, MiB)).rejects.toMatchObject({
      code: 'ERR_IO',
      path: missing,
    });
  });
});
