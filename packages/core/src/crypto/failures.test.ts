import { execFileSync } from 'node:child_process';
import { readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { isSluiceError } from '@sluice/protocol';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openBuffer, openFile, sealBuffer, sealFile } from '../format/sealedBlob.js';
import {
  expectSluiceError,
  hex,
  IV,
  KEY,
  MiB,
  pattern,
  tempDir,
  tempFilesIn,
  writeRandomFile,
} from '../test-helpers.js';
import {
  concat,
  createDecryptStream,
  createEncryptStream,
  decryptChunk,
  decryptFile,
  encryptFile,
  sha256,
  sha256File,
  sha256FileChunks,
  split,
} from './cryptoBackend.js';

// Verified (see the first test) to fail the PKCS#7 check on BLOB below, like any wrong key
// does with probability ~255/256.
const WRONG_KEY = Buffer.alloc(32, 0x5a);
const PLAIN = pattern(1000, 1);
const BLOB = sealBuffer(PLAIN, KEY, IV);

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});

async function expectNoFile(path: string): Promise<void> {
  await expect(stat(path)).rejects.toMatchObject({ code: 'ENOENT' });
}

describe('bad input is rejected with typed errors and leaves nothing behind', () => {
  it('the wrong key is one that openssl also rejects (fixture check)', () => {
    expect(() =>
      execFileSync('openssl', ['enc', '-d', '-aes-256-cbc', '-K', hex(WRONG_KEY), '-iv', hex(IV)], {
        input: BLOB.subarray(16),
        stdio: ['pipe', 'pipe', 'pipe'],
      }),
    ).toThrow(/bad decrypt/);
  });

  it('wrong key → ERR_BAD_DECRYPT from openFile, decryptFile, streams and openBuffer; no dst', async () => {
    const blob = join(dir, 'wk.blob');
    await writeFile(blob, BLOB);
    const dst = join(dir, 'wk.out');
    await expectSluiceError(openFile(blob, dst, WRONG_KEY), 'ERR_BAD_DECRYPT');
    await expectNoFile(dst);
    const raw = join(dir, 'wk.raw');
    await writeFile(raw, BLOB.subarray(16));
    for (const threads of [1, 2]) {
      await expectSluiceError(decryptFile(raw, dst, WRONG_KEY, IV, { threads }), 'ERR_BAD_DECRYPT');
      await expectNoFile(dst);
    }
    expect(() => openBuffer(BLOB, WRONG_KEY)).toThrow(
      expect.objectContaining({ name: 'SluiceError', code: 'ERR_BAD_DECRYPT' }),
    );
    const streamed = buffer(
      Readable.from([BLOB.subarray(16)]).pipe(createDecryptStream(WRONG_KEY, IV)),
    );
    await expectSluiceError(streamed, 'ERR_BAD_DECRYPT');
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it('a stream never emits the held-back last block when the padding is bad', async () => {
    const flipped = Buffer.from(BLOB.subarray(16));
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 0x01;
    const s = createDecryptStream(KEY, IV);
    const seen: Buffer[] = [];
    s.on('data', (d: Buffer) => seen.push(d));
    const err = await new Promise<unknown>((resolve) => {
      s.on('error', resolve);
      s.end(flipped);
    });
    expect(isSluiceError(err, 'ERR_BAD_DECRYPT')).toBe(true);
    const got = Buffer.concat(seen);
    expect(got.length).toBeLessThanOrEqual(flipped.length - 16);
    expect(got.equals(PLAIN.subarray(0, got.length))).toBe(true);
  });

  it('a flipped byte in the last block → ERR_BAD_DECRYPT, no dst', async () => {
    const blob = join(dir, 'flip.blob');
    const bad = Buffer.from(BLOB);
    bad[bad.length - 3] = (bad[bad.length - 3] ?? 0) ^ 0x80;
    await writeFile(blob, bad);
    const dst = join(dir, 'flip.out');
    await expectSluiceError(openFile(blob, dst, KEY), 'ERR_BAD_DECRYPT');
    await expectNoFile(dst);
  });

  it('a truncated blob → ERR_BAD_BLOB (not block aligned) or ERR_BAD_DECRYPT (aligned), no dst', async () => {
    const dst = join(dir, 'trunc.out');
    const misaligned = join(dir, 'trunc1.blob');
    await writeFile(misaligned, BLOB.subarray(0, BLOB.length - 5));
    await expectSluiceError(openFile(misaligned, dst, KEY), 'ERR_BAD_BLOB');
    await expectNoFile(dst);
    // Cut at a block boundary: the new last block is a data block, so its "padding" is garbage.
    const aligned = join(dir, 'trunc2.blob');
    await writeFile(aligned, BLOB.subarray(0, BLOB.length - 16));
    await expectSluiceError(openFile(aligned, dst, KEY), 'ERR_BAD_DECRYPT');
    await expectNoFile(dst);
  });

  it('17-byte, 16-byte and empty blobs → ERR_BAD_BLOB; raw ciphertext not a block multiple → ERR_BAD_DECRYPT', async () => {
    const dst = join(dir, 'small.out');
    for (const n of [17, 16, 0, 31]) {
      const p = join(dir, `b${n}.blob`);
      await writeFile(p, BLOB.subarray(0, n));
      await expectSluiceError(openFile(p, dst, KEY), 'ERR_BAD_BLOB');
      expect(() => openBuffer(BLOB.subarray(0, n), KEY)).toThrow(
        expect.objectContaining({ code: 'ERR_BAD_BLOB' }),
      );
      await expectNoFile(dst);
    }
    for (const n of [0, 17]) {
      const p = join(dir, `raw${n}`);
      await writeFile(p, BLOB.subarray(16, 16 + n));
      await expectSluiceError(decryptFile(p, dst, KEY, IV), 'ERR_BAD_DECRYPT');
      await expectNoFile(dst);
    }
  });

  it('an existing destination keeps its content when decryption fails', async () => {
    const blob = join(dir, 'keep.blob');
    await writeFile(blob, BLOB);
    const dst = join(dir, 'keep.out');
    await writeFile(dst, 'precious');
    await expectSluiceError(openFile(blob, dst, WRONG_KEY), 'ERR_BAD_DECRYPT');
    expect(await readFile(dst, 'utf8')).toBe('precious');
    await expectSluiceError(encryptFile(join(dir, 'missing'), dst, KEY, IV), 'ERR_IO');
    expect(await readFile(dst, 'utf8')).toBe('precious');
    // ...and is replaced on success.
    await openFile(blob, dst, KEY);
    expect((await readFile(dst)).equals(PLAIN)).toBe(true);
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it('a missing source → ERR_IO naming the path', async () => {
    const missing = join(dir, 'does-not-exist');
    const e = await decryptFile(missing, join(dir, 'x'), KEY, IV).catch((err: unknown) => err);
    expect(isSluiceError(e, 'ERR_IO')).toBe(true);
    expect((e as Error).message).toContain(missing);
    await expectSluiceError(sha256File(missing), 'ERR_IO');
  });
});

describe('abort', () => {
  let big: string;
  let bigEnc: string;
  beforeAll(async () => {
    big = join(dir, 'abort-src');
    bigEnc = join(dir, 'abort-src.enc');
    await writeRandomFile(big, 96 * MiB);
    await encryptFile(big, bigEnc, KEY, IV);
  });

  it('an already aborted signal rejects at once with ERR_ABORTED', async () => {
    const signal = AbortSignal.abort();
    const dst = join(dir, 'ab0');
    await expectSluiceError(encryptFile(big, dst, KEY, IV, { signal }), 'ERR_ABORTED');
    await expectSluiceError(decryptFile(bigEnc, dst, KEY, IV, { signal }), 'ERR_ABORTED');
    await expectSluiceError(sealFile(big, dst, KEY, { signal }), 'ERR_ABORTED');
    await expectSluiceError(split(big, `${dst}.s`, `${dst}.b`, 10, { signal }), 'ERR_ABORTED');
    await expectSluiceError(concat([big], dst, { signal }), 'ERR_ABORTED');
    await expectSluiceError(sha256File(big, { signal }), 'ERR_ABORTED');
    await expectNoFile(dst);
    expect(await tempFilesIn(dir)).toEqual([]);
  });

  it.each([
    [
      'encryptFile',
      (signal: AbortSignal, dst: string) => encryptFile(big, dst, KEY, IV, { signal }),
    ],
    [
      'decryptFile threads=1',
      (signal: AbortSignal, dst: string) =>
        decryptFile(bigEnc, dst, KEY, IV, { signal, threads: 1 }),
    ],
    [
      'decryptFile threads=2',
      (signal: AbortSignal, dst: string) =>
        decryptFile(bigEnc, dst, KEY, IV, { signal, threads: 2 }),
    ],
    ['concat', (signal: AbortSignal, dst: string) => concat([big, big], dst, { signal })],
  ])('aborting %s mid-operation → ERR_ABORTED, no dst, no temp file', async (_name, run) => {
    const dst = join(dir, 'ab-mid');
    await writeFile(dst, 'old');
    const ac = new AbortController();
    const p = run(ac.signal, dst);
    setTimeout(() => ac.abort(new Error('user gave up')), 20);
    await expectSluiceError(p, 'ERR_ABORTED');
    expect(await readFile(dst, 'utf8')).toBe('old');
    expect(await tempFilesIn(dir)).toEqual([]);
  });
});

describe('argument validation happens in TypeScript before any backend is touched', () => {
  const saved = process.env.SLUICE_BACKEND;
  afterEach(() => {
    if (saved === undefined) delete process.env.SLUICE_BACKEND;
    else process.env.SLUICE_BACKEND = saved;
  });

  it('bad key/iv types and lengths throw TypeError/RangeError naming the argument, never the key', async () => {
    // An unusable SLUICE_BACKEND proves the checks run before backend resolution.
    process.env.SLUICE_BACKEND = 'bogus';
    const src = join(dir, 'v-src');
    await writeFile(src, 'x');
    const secret = Buffer.alloc(31, 0xab);
    const e = await encryptFile(src, join(dir, 'v'), secret, IV).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(RangeError);
    expect((e as Error).message).toMatch(/^key must be exactly 32 bytes, got 31$/);
    expect((e as Error).message).not.toContain('abab');
    await expect(encryptFile(src, join(dir, 'v'), 'k'.repeat(32) as never, IV)).rejects.toThrow(
      TypeError,
    );
    await expect(encryptFile(src, join(dir, 'v'), KEY, Buffer.alloc(15))).rejects.toThrow(
      /^iv must be exactly 16 bytes/,
    );
    await expect(decryptFile(src, join(dir, 'v'), KEY, null as never)).rejects.toThrow(TypeError);
    await expect(decryptFile(src, '', KEY, IV)).rejects.toThrow(RangeError);
    await expect(decryptFile(src, 5 as never, KEY, IV)).rejects.toThrow(TypeError);
    await expect(decryptFile(src, join(dir, 'v'), KEY, IV, { threads: 0 })).rejects.toThrow(
      RangeError,
    );
    await expect(decryptFile(src, join(dir, 'v'), KEY, IV, { threads: 65 })).rejects.toThrow(
      RangeError,
    );
    await expect(decryptFile(src, join(dir, 'v'), KEY, IV, { threads: 1.5 })).rejects.toThrow(
      RangeError,
    );
    await expect(
      decryptFile(src, join(dir, 'v'), KEY, IV, { threads: '2' as never }),
    ).rejects.toThrow(TypeError);
    await expect(decryptChunk(Buffer.alloc(17), IV, KEY)).rejects.toThrow(/multiple of 16/);
    await expect(decryptChunk(Buffer.alloc(16), Buffer.alloc(8), KEY)).rejects.toThrow(
      /^prevBlock must be exactly 16/,
    );
    await expect(decryptChunk(Buffer.alloc(32), IV, KEY, Buffer.alloc(16))).rejects.toThrow(
      RangeError,
    );
    const shared = Buffer.alloc(64);
    await expect(
      decryptChunk(shared.subarray(0, 32), IV, KEY, shared.subarray(16)),
    ).rejects.toThrow(/overlap/);
    await expect(split(src, 'a', 'b', -1)).rejects.toThrow(RangeError);
    await expect(split(src, 'a', 'b', 2 ** 53)).rejects.toThrow(RangeError);
    await expect(split(src, 'a', 'a', 0)).rejects.toThrow(RangeError);
    await expect(concat('a' as never, 'b')).rejects.toThrow(TypeError);
    await expect(sha256('abc' as never)).rejects.toThrow(TypeError);
    await expect(sha256FileChunks(src, 0)).rejects.toThrow(RangeError);
    expect(() => createEncryptStream(KEY.subarray(1), IV)).toThrow(RangeError);
    expect(() => createDecryptStream(KEY, 'iv' as never)).toThrow(TypeError);
    await expect(sealFile(src, join(dir, 'v'), KEY, { iv: Buffer.alloc(12) })).rejects.toThrow(
      RangeError,
    );
    // With valid arguments the bogus backend setting is what fails.
    await expectSluiceError(encryptFile(src, join(dir, 'v'), KEY, IV), 'ERR_INVALID_ARG');
    expect(await readdir(dir)).not.toContain('v');
  });

  it('Uint8Array keys and IVs are accepted', async () => {
    const src = join(dir, 'u8');
    await writeFile(src, 'hello');
    await encryptFile(src, `${src}.enc`, new Uint8Array(KEY), new Uint8Array(IV));
    await decryptFile(`${src}.enc`, `${src}.dec`, new Uint8Array(KEY), new Uint8Array(IV));
    expect(await readFile(`${src}.dec`, 'utf8')).toBe('hello');
  });

  it('ranges beyond the file are RangeErrors', async () => {
    const p = join(dir, 'r');
    await writeFile(p, 'abcdef');
    await expect(sha256File(p, { offset: 3, length: 4 })).rejects.toThrow(RangeError);
    await expect(split(p, `${p}.s`, `${p}.b`, 7)).rejects.toThrow(RangeError);
    await truncate(p, 0);
    await expect(sha256FileChunks(p, 16, { offset: 1 })).rejects.toThrow(RangeError);
  });
});

describe('outputs', () => {
  it('are created owner-only (0600): a decrypted model is not readable by other users', async () => {
    const src = join(dir, 'mode-src');
    await writeFile(src, 'secret model');
    await encryptFile(src, `${src}.enc`, KEY, IV);
    await decryptFile(`${src}.enc`, `${src}.dec`, KEY, IV);
    await sealFile(src, `${src}.blob`, KEY);
    for (const out of [`${src}.enc`, `${src}.dec`, `${src}.blob`]) {
      expect((await stat(out)).mode & 0o777).toBe(0o600);
    }
  });

  it("remove the temp files of dead writers beside a destination, never a live writer's", async () => {
    const out = join(dir, 'stale-out');
    const src = join(dir, 'stale-src');
    await writeFile(src, 'model');
    // A process that has exited (its pid is free again) and one that runs (this test's parent).
    const dead = Number(
      execFileSync(process.execPath, ['-p', 'process.pid'], { encoding: 'utf8' }),
    );
    const name = (pid: number) =>
      `.stale-out.sluice-${pid.toString(16).padStart(8, '0')}0123456789ab.tmp`;
    const left = [name(dead), name(process.ppid), '.stale-out.sluice-0123456789ab.tmp'];
    for (const n of left) await writeFile(join(dir, n), 'partial plaintext');
    await encryptFile(src, out, KEY, IV);
    const names = await readdir(dir);
    expect(names).not.toContain(name(dead));
    // a live writer's file, and an old-style name without a pid, stay
    expect(names).toContain(name(process.ppid));
    expect(names).toContain('.stale-out.sluice-0123456789ab.tmp');
    for (const n of left) await rm(join(dir, n), { force: true });
  });
});
