import { createCipheriv, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { binding, MiB, patternBytes, small, tempDir } from './helpers.js';

const b = binding();
const tmp = tempDir();
afterAll(() => tmp.cleanup());

describe('concurrency', () => {
  it('runs many file and memory operations at once without mixing them up', async () => {
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < 24; i++) {
      const key = randomBytes(32);
      const iv = randomBytes(16);
      const plain = patternBytes(100_000 + i * 4099, i);
      const src = tmp.file(`c-src-${i}`);
      const sealed = tmp.file(`c-sealed-${i}`);
      const out = tmp.file(`c-out-${i}`);
      writeFileSync(src, plain);
      jobs.push(
        (async () => {
          await b.encryptFile(src, sealed, key, iv, { dstOffset: 0 });
          await b.decryptFile(sealed, out, key, iv, { threads: (i % 3) + 1, srcOffset: 0 });
          expect(readFileSync(out).equals(plain)).toBe(true);
          const ct = readFileSync(sealed);
          const mem = Buffer.alloc(ct.length);
          await b.decryptChunk(ct, iv, key, mem, { threads: 2 });
          expect(mem.subarray(0, plain.length).equals(plain)).toBe(true);
          const ctx = b.createCipher('encrypt', key, iv);
          const parts = await Promise.all([
            ctx.update(plain.subarray(0, 777)),
            ctx.update(plain.subarray(777)),
            ctx.final(),
          ]);
          expect(Buffer.concat(parts).equals(ct)).toBe(true);
        })(),
      );
    }
    await Promise.all(jobs);
  });

  it('keeps the event loop responsive during a long decryptFile', async () => {
    const size = (small ? 32 : 256) * MiB;
    const key = randomBytes(32);
    const iv = randomBytes(16);
    const sealed = tmp.file('long-sealed');
    // Write the ciphertext in pieces so the test itself stays within modest memory.
    const fh = await open(sealed, 'w');
    const cipher = createCipheriv('aes-256-cbc', key, iv);
    const piece = patternBytes(8 * MiB, 3);
    for (let off = 0; off < size; off += piece.length) await fh.write(cipher.update(piece));
    await fh.write(cipher.final());
    await fh.close();

    let ticks = 0;
    let maxGap = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
    }, 5);
    const started = performance.now();
    const r = await b.decryptFile(sealed, tmp.file('long-out'), key, iv, {
      threads: 2,
      srcOffset: 0,
    });
    const elapsed = performance.now() - started;
    clearInterval(timer);
    expect(r.bytesWritten).toBe(size);
    // Ticks kept arriving all the way through. A blocking call would show one gap as long as
    // the whole decryption; the bound leaves room for other test files sharing the cores.
    expect(ticks).toBeGreaterThan(Math.min(10, elapsed / 20));
    expect(maxGap).toBeLessThan(Math.max(100, elapsed / 4));
  });
});
