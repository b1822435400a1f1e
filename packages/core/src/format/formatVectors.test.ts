// Parses the test vectors out of docs/FORMAT.md and checks them against the implementation,
// so the document and the code cannot drift apart.

import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chunkLength, validateManifest } from '@sluice/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { hex, openssl, tempDir } from '../test-helpers.js';
import { BlobChunkDecryptor, chunkBlobOffset } from './blobChunkDecryptor.js';
import { verifyChunk } from './manifest.js';
import { sealAndSplit } from './sealAndSplit.js';
import { blobSize, openBuffer, openFile, sealBuffer, sealFile } from './sealedBlob.js';
import { smallPartSize } from './smallPartSize.js';

const here = dirname(fileURLToPath(import.meta.url));
const doc = await readFile(resolve(here, '..', '..', '..', '..', 'docs', 'FORMAT.md'), 'utf8');

function fenced(info: string): string {
  const m = doc.match(new RegExp(`\`\`\`${info}\\n([\\s\\S]*?)\`\`\``));
  if (!m?.[1]) throw new Error(`FORMAT.md has no \`\`\`${info} block`);
  return m[1];
}

type Fields = Record<string, string>;
const lines = fenced('vectors')
  .split('\n')
  .filter((l) => l.trim() !== '')
  .map((l) => {
    const [kind, ...rest] = l.trim().split(/\s+/);
    const fields: Fields = {};
    for (const r of rest) {
      const eq = r.indexOf('=');
      if (eq > 0) fields[r.slice(0, eq)] = r.slice(eq + 1);
      else fields.value = r;
    }
    return { kind: kind as string, fields };
  });

function one(kind: string): Fields {
  const found = lines.filter((l) => l.kind === kind);
  if (found.length !== 1)
    throw new Error(`expected one "${kind}" line in FORMAT.md, found ${found.length}`);
  return (found[0] as { fields: Fields }).fields;
}
const num = (f: Fields, k: string) => {
  const v = f[k];
  if (v === undefined || !/^\d+$/.test(v))
    throw new Error(`vector field ${k} missing or not a number`);
  return Number(v);
};
const str = (f: Fields, k: string) => {
  const v = f[k];
  if (v === undefined) throw new Error(`vector field ${k} missing`);
  return v;
};
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const KEY = Buffer.from(str(one('key'), 'value'), 'hex');
const IV = Buffer.from(str(one('iv'), 'value'), 'hex');
const seals = lines.filter((l) => l.kind === 'seal').map((l) => l.fields);
const splits = lines.filter((l) => l.kind === 'split').map((l) => l.fields);

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});

describe('docs/FORMAT.md vectors', () => {
  it('has the expected vectors', () => {
    expect(KEY.length).toBe(32);
    expect(IV.length).toBe(16);
    expect(seals.map((s) => num(s, 'n'))).toEqual([0, 1, 15, 16, 17, 31, 32, 33]);
    expect(splits.length).toBeGreaterThanOrEqual(5);
  });

  it.each(seals.map((s) => [num(s, 'n'), s] as const))('sealed blob of %i bytes', async (n, v) => {
    const plain = Buffer.from(Array.from({ length: n }, (_, i) => i & 0xff));
    expect(sha(plain)).toBe(str(v, 'plain-sha256'));
    const blob = sealBuffer(plain, KEY, IV);
    expect(hex(blob)).toBe(str(v, 'blob'));
    expect(sha(blob)).toBe(str(v, 'blob-sha256'));
    expect(blob.length).toBe(blobSize(n));
    expect(openBuffer(Buffer.from(str(v, 'blob'), 'hex'), KEY).equals(plain)).toBe(true);
    // Through the file path of the active backend, and back through the documented openssl command.
    const src = join(dir, `v${n}`);
    await writeFile(src, plain);
    await sealFile(src, `${src}.blob`, KEY, { iv: IV });
    const onDisk = await readFile(`${src}.blob`);
    expect(hex(onDisk)).toBe(str(v, 'blob'));
    const ivHex = hex(onDisk.subarray(0, 16));
    expect(
      openssl(
        ['enc', '-d', '-aes-256-cbc', '-K', hex(KEY), '-iv', ivHex],
        onDisk.subarray(16),
      ).equals(plain),
    ).toBe(true);
    await openFile(`${src}.blob`, `${src}.out`, KEY);
    expect((await readFile(`${src}.out`)).equals(plain)).toBe(true);
  });

  it.each(splits.map((s) => [num(s, 'blobSize'), num(s, 'smallSizeKB'), num(s, 'smallSize')]))(
    'split rule: blobSize %i, smallSizeKB %i → smallSize %i',
    (blob, kb, small) => {
      expect(smallPartSize(blob, kb)).toBe(small);
    },
  );

  it('the manifest vector, and the chunk-by-chunk table of section 5', async () => {
    const input = one('manifest-input');
    const size = num(input, 'plainSize');
    const modulus = num(input, 'modulus');
    const plain = Buffer.from(Array.from({ length: size }, (_, i) => i % modulus));
    expect(sha(plain)).toBe(str(input, 'plain-sha256'));
    const src = join(dir, 'manifest-input');
    await writeFile(src, plain);
    const r = await sealAndSplit(src, {
      dir,
      key: KEY,
      iv: IV,
      smallSizeKB: num(input, 'smallSizeKB'),
      chunkSize: num(input, 'chunkSize'),
    });
    const small = await readFile(r.smallPath);
    const big = await readFile(r.bigPath);
    expect(sha(Buffer.concat([small, big]))).toBe(str(input, 'blob-sha256'));
    expect(sha(small)).toBe(str(input, 'small-sha256'));
    expect(sha(big)).toBe(str(input, 'big-sha256'));
    const documented = validateManifest(JSON.parse(fenced('json manifest-vector')));
    expect(r.manifest).toEqual(documented);

    // Section 5's table: what each in-order push decrypts.
    const num_ = (s: string) => Number(s.replace(/\s/g, ''));
    const rows = [
      ...doc.matchAll(
        /^\|\s*(small|chunk \d)\s*\|\s*\[([\d ]+), ([\d ]+)\)\s*\|\s*\[([\d ]+), ([\d ]+)\)[^|]*\|\s*(?:[\d, ]+→ \[([\d ]+), ([\d ]+)\)|—)/gm,
      ),
    ].map((m) => ({
      lo: num_(m[2] as string),
      hi: num_(m[3] as string),
      inside: [num_(m[4] as string), num_(m[5] as string)] as const,
      edge: m[6] === undefined ? undefined : ([num_(m[6]), num_(m[7] as string)] as const),
    }));
    expect(rows).toHaveLength(1 + documented.chunks.length);
    const pieces: [number, Buffer][] = [[0, small]];
    documented.chunks.forEach((_, k) => {
      const data = big.subarray(
        k * documented.chunkSize,
        k * documented.chunkSize + chunkLength(documented, k),
      );
      verifyChunk(documented, k, data);
      pieces.push([chunkBlobOffset(documented, k), data]);
    });
    const d = new BlobChunkDecryptor(documented.blobSize, KEY);
    const out = Buffer.alloc(size);
    for (const [i, [offset, data]] of pieces.entries()) {
      const row = rows[i];
      expect([offset, offset + data.length]).toEqual([row?.lo, row?.hi]);
      const got = (await d.push(offset, data)).map((p) => {
        p.data.copy(out, p.offset);
        return [p.offset, p.offset + p.data.length];
      });
      const prevEdge = rows[i - 1]?.edge;
      const want = [...(prevEdge ? [prevEdge] : []), row?.inside].sort(
        (a, b) => (a?.[0] ?? 0) - (b?.[0] ?? 0),
      );
      const merged = got
        .sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0))
        .reduce<number[][]>((acc, [a, b]) => {
          const last = acc[acc.length - 1];
          if (last && last[1] === a) last[1] = b as number;
          else acc.push([a as number, b as number]);
          return acc;
        }, []);
      // Each documented range is covered exactly by what that push emitted.
      expect(merged.flat()).toEqual(
        want
          .reduce<number[][]>((acc, r) => {
            const last = acc[acc.length - 1];
            if (last && r && last[1] === r[0]) last[1] = r[1];
            else if (r) acc.push([r[0], r[1]]);
            return acc;
          }, [])
          .flat(),
      );
    }
    expect(d.complete).toBe(true);
    expect(out.equals(plain)).toBe(true);
  });
});
