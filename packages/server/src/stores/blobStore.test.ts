import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../test-helpers.js';
import { BlobStore } from './blobStore.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map(removeDir));
});

describe('BlobStore', () => {
  it('streams into a temp file, commits under a random id, removes', async () => {
    const d = await tempDir();
    dirs.push(d);
    const blobs = await BlobStore.open(d);
    const data = randomBytes(300_000);
    const pending = await blobs.receive(
      Readable.from([data.subarray(0, 1000), data.subarray(1000)]),
    );
    expect(pending.size).toBe(data.length);
    const id = await blobs.commit(pending);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(await readFile(blobs.path(id))).toEqual(data);
    expect((await stat(blobs.path(id))).mode & 0o777).toBe(0o600);
    expect(await readdir(blobs.tempDir)).toEqual([]);
    await blobs.remove(id);
    await expect(stat(blobs.path(id))).rejects.toThrow();
  });

  it('leaves no temp file when the stream fails, and clears stale ones on open', async () => {
    const d = await tempDir();
    dirs.push(d);
    const blobs = await BlobStore.open(d);
    const failing = new Transform({
      transform(_chunk, _enc, done) {
        done(new Error('too big'));
      },
    });
    await expect(blobs.receive(Readable.from([randomBytes(10)]), failing)).rejects.toThrow(
      'too big',
    );
    expect(await readdir(blobs.tempDir)).toEqual([]);
    await writeFile(join(blobs.tempDir, 'left-by-a-crash'), 'x');
    await BlobStore.open(d);
    expect(await readdir(blobs.tempDir)).toEqual([]);
  });

  it('removes committed blobs nobody references, and nothing else', async () => {
    const d = await tempDir();
    dirs.push(d);
    const blobs = await BlobStore.open(d);
    const kept = await blobs.commit(await blobs.receive(Readable.from([Buffer.from('kept')])));
    const orphan = await blobs.commit(await blobs.receive(Readable.from([Buffer.from('lost')])));
    await writeFile(join(blobs.dir, 'not-a-blob'), 'x');
    expect(await blobs.removeUnreferenced(new Set([kept]))).toEqual([orphan]);
    expect((await readdir(blobs.dir)).sort()).toEqual(['.tmp', kept, 'not-a-blob'].sort());
  });

  it('refuses paths that are not blob ids', async () => {
    const d = await tempDir();
    dirs.push(d);
    const blobs = await BlobStore.open(d);
    for (const id of ['../metadata.json', '', 'a'.repeat(31), `${'a'.repeat(32)}/x`]) {
      expect(() => blobs.path(id)).toThrow('invalid blob id');
    }
  });
});
