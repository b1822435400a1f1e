// A file round trip through every call of the binding, for `scripts/valgrind.mjs` to run under
// memcheck: plain node (no vitest, no worker_threads), each call repeated ROUNDS times so that a
// leak per call shows up as ROUNDS leaked blocks. Every result is checked against node:crypto;
// the failure paths (bad decrypt, missing file, use after final) run too, since errors allocate.
'use strict';
const { createCipheriv, createDecipheriv, createHash, randomBytes } = require('node:crypto');
const { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { load } = require('../index.js');

const MiB = 1024 * 1024;
const SIZE = Number(process.env.SLUICE_VALGRIND_MIB ?? '4') * MiB + 5;
const ROUNDS = 3;

function same(got, expected, what) {
  if (!got.equals(expected)) throw new Error(`${what}: output differs from node:crypto`);
}

async function rejects(promise, code, what) {
  try {
    await promise;
  } catch (e) {
    if (e?.code !== code)
      throw new Error(`${what}: expected ${code}, got ${e?.code}: ${e?.message}`);
    return;
  }
  throw new Error(`${what}: expected ${code}, it succeeded`);
}

async function round(b, dir, n) {
  const key = randomBytes(32);
  const iv = randomBytes(16);
  const plain = randomBytes(SIZE);
  const c = createCipheriv('aes-256-cbc', key, iv);
  const ct = Buffer.concat([c.update(plain), c.final()]);
  const src = join(dir, 'plain');
  const blob = join(dir, 'blob');
  const out = join(dir, 'out');
  writeFileSync(src, plain);

  // Sealed blob (IV ‖ ciphertext, as @sluice/core writes it) and back, through both write paths.
  writeFileSync(blob, iv);
  if (n % 2 === 1) process.env.SLUICE_NATIVE_NO_DIRECT = '1';
  await b.encryptFile(src, blob, key, iv, { dstOffset: 16 });
  same(readFileSync(blob), Buffer.concat([iv, ct]), 'encryptFile');
  await b.decryptFile(blob, out, key, iv, { threads: 2, srcOffset: 16 });
  same(readFileSync(out), plain, 'decryptFile');
  delete process.env.SLUICE_NATIVE_NO_DIRECT;

  // In memory: raw chunks, and the streaming context fed in odd pieces.
  const mem = Buffer.alloc(ct.length);
  await b.decryptChunk(ct, iv, key, mem, { threads: 2 });
  same(mem.subarray(0, SIZE), plain, 'decryptChunk');
  for (const [mode, input, expected] of [
    ['encrypt', plain, ct],
    ['decrypt', ct, plain],
  ]) {
    const ctx = b.createCipher(mode, key, iv);
    const parts = [];
    for (let off = 0; off < input.length; off += 1_000_003) {
      parts.push(await ctx.update(input.subarray(off, off + 1_000_003)));
    }
    parts.push(await ctx.final());
    same(Buffer.concat(parts), expected, `createCipher ${mode}`);
  }

  // Hashes, split and concat.
  const digest = createHash('sha256').update(plain).digest();
  same(await b.sha256(plain), digest, 'sha256');
  same(await b.sha256File(src, 0, -1), digest, 'sha256File');
  const chunks = await b.sha256FileChunks(src, 0, MiB);
  same(chunks[0], createHash('sha256').update(plain.subarray(0, MiB)).digest(), 'sha256FileChunks');
  await b.split(blob, join(dir, 'small'), join(dir, 'big'), 1000);
  await b.concat([join(dir, 'small'), join(dir, 'big')], join(dir, 'joined'));
  same(readFileSync(join(dir, 'joined')), readFileSync(blob), 'split + concat');

  // Failures: each allocates an error on a worker and a JS Error on the main thread.
  const wrong = Buffer.from(key);
  wrong[0] ^= 1;
  const d = createDecipheriv('aes-256-cbc', wrong, iv);
  d.update(ct);
  let nodeFails = false;
  try {
    d.final();
  } catch {
    nodeFails = true;
  }
  rmSync(out, { force: true });
  if (nodeFails) {
    await rejects(
      b.decryptFile(blob, out, wrong, iv, { threads: 2, srcOffset: 16 }),
      'ERR_BAD_DECRYPT',
      'decryptFile with a wrong key',
    );
    if (existsSync(out)) throw new Error('decryptFile left a file after a bad decrypt');
    const ctx = b.createCipher('decrypt', wrong, iv);
    await ctx.update(ct);
    await rejects(ctx.final(), 'ERR_BAD_DECRYPT', 'final with a wrong key');
  }
  await rejects(
    b.decryptFile(join(dir, 'missing'), out, key, iv, { threads: 1, srcOffset: 0 }),
    'ERR_IO',
    'decryptFile of a missing file',
  );
  const done = b.createCipher('encrypt', key, iv);
  await done.final();
  await rejects(done.update(plain.subarray(0, 16)), 'ERR_CRYPTO', 'update after final');
}

async function main() {
  const { binding, path, errors } = load();
  if (!binding) {
    throw new Error(`the addon did not load: ${errors.map((e) => e.message).join('; ')}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'sluice-valgrind-'));
  try {
    for (let n = 0; n < ROUNDS; n++) await round(binding, dir, n);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`round trip ok: ${ROUNDS} × ${SIZE} bytes through ${path}`);
}

main().catch((e) => {
  console.error(`round trip FAILED: ${e?.stack ?? e}`);
  process.exitCode = 1;
});
