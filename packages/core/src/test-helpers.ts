// Shared helpers for the tests (excluded from the build by tsconfig.build.json).

import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSluiceError, type SluiceErrorCode } from '@sluice/protocol';
import { afterAll, expect } from 'vitest';

export const MiB = 1024 * 1024;

const tempDirs: string[] = [];
// Registered once per test file (each file imports this module afresh). A hook registered from
// inside tempDir() would be lost when tempDir() is called from a beforeAll.
afterAll(async () => {
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/** A fresh temp directory removed after the test file. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sluice-core-'));
  tempDirs.push(dir);
  return dir;
}

/** Deterministic bytes: byte i = (i * 7 + seed) & 0xff — cheap and not block-periodic. */
export function pattern(size: number, seed = 0): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + seed + (i >>> 8) * 13) & 0xff;
  return b;
}

/** Writes `size` random bytes to `path` in 8 MiB pieces and returns their SHA-256 (hex). */
export async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let done = 0; done < size; ) {
      const piece = randomBytes(Math.min(8 * MiB, size - done));
      hash.update(piece);
      await fh.write(piece, 0, piece.length, done);
      done += piece.length;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

/** SHA-256 (hex) of a file through node:crypto — independent of the backend under test. */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const piece of createReadStream(path, { highWaterMark: 8 * MiB })) hash.update(piece);
  return hash.digest('hex');
}

export function openssl(args: string[], input?: Buffer): Buffer {
  return execFileSync('openssl', args, { input: input ?? Buffer.alloc(0), maxBuffer: 1 << 30 });
}

/** Names in `dir` that look like sluice temp files. */
export async function tempFilesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.includes('.sluice-') && n.endsWith('.tmp'));
}

export async function expectSluiceError(p: Promise<unknown>, code: SluiceErrorCode): Promise<void> {
  const e: unknown = await p.then(
    () => new Error(`expected ${code}, but the call succeeded`),
    (err: unknown) => err,
  );
  if (!isSluiceError(e, code)) {
    throw new Error(`expected SluiceError ${code}, got ${String(e)}`, { cause: e });
  }
  expect(e.code).toBe(code);
}

export const hex = (b: Buffer | Uint8Array) => Buffer.from(b).toString('hex');

export const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
export const IV = Buffer.from(Array.from({ length: 16 }, (_, i) => 0xf0 + i));
