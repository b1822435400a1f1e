// Seeded randomized test of every way the binding opens ciphertext: decryptChunk (raw CBC at
// any block offset, split over threads), createCipher('decrypt') (a sealed blob opened as a
// stream, fed in random pieces) and decryptFile (a sealed blob file opened at srcOffset), over
// random lengths around block, thread-segment and window edges, random keys and IVs, and
// truncated, tampered, wrong-key and wrong-padding blobs. node:crypto is the oracle: each case
// must give exactly its plaintext or exactly its failure (ERR_BAD_DECRYPT, nothing written).
//
// SLUICE_FUZZ_SEED=<n> replays a run (the seed is printed, and named in any failure);
// SLUICE_FUZZ_CASE=<class>:<index> replays one case; SLUICE_FUZZ_SCALE multiplies the counts.
import { createCipheriv, createDecipheriv, randomInt } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import type { NativeError } from '../index.js';
import { binding, small, tempDir } from './helpers.js';
import { SeededRandom } from './seededRandom.js';

const b = binding();
const tmp = tempDir();
afterAll(() => tmp.cleanup());

const SEED = process.env.SLUICE_FUZZ_SEED
  ? Number(process.env.SLUICE_FUZZ_SEED)
  : randomInt(2 ** 31);
const ONLY = process.env.SLUICE_FUZZ_CASE?.split(':');
/** Whether class `name` runs (all do, unless SLUICE_FUZZ_CASE picks one case of another). */
const runs = (...names: string[]) => !ONLY || names.includes(ONLY[0] ?? '');
const SCALE = Number(process.env.SLUICE_FUZZ_SCALE ?? '1');
if (!Number.isSafeInteger(SEED) || !(SCALE > 0)) {
  throw new Error('SLUICE_FUZZ_SEED must be an integer and SLUICE_FUZZ_SCALE a positive number');
}
console.log(
  `fuzz: seed ${SEED} (replay with SLUICE_FUZZ_SEED=${SEED}${small ? ' SLUICE_TEST_SCALE=small' : ''})`,
);

/** Cases per class: over 100 000 in all, under the sanitizers too (where the cheaper raw-chunk
 *  cases take more of the share, and the big inputs shrink). */
const COUNTS = small
  ? { chunk: 76_000, stream: 14_000, pieces: 10_000, file: 600 }
  : { chunk: 70_000, stream: 20_000, pieces: 10_000, file: 1_500 };
/** Largest plaintext of the occasional big case (thread segments are 64 KiB, file windows 4 MiB). */
const BIG = small ? 300_000 : 600_000;
/** Plaintext lengths at decryptFile's 4 MiB window edges (the last window may hold only padding). */
const WINDOW = 4 * 1024 * 1024;
const WINDOW_EDGES = [-17, -16, -15, -1, 0, 1, 15, 16, 17].flatMap((d) =>
  (small ? [1] : [1, 2]).map((k) => k * WINDOW + d),
);
/** A native call that has not settled by then counts as a hang. */
const HANG_MS = 30_000;

const BLOCK = 16;
const EDGES = [
  0, 1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 255, 256, 257, 4095, 4096, 4097,
];
/** Around the 64 KiB per-thread segments of decryptChunk. */
const BIG_EDGES = [65_535, 65_536, 65_537, 131_071, 131_072, 131_073, 196_607, 196_608, 196_609];

// Mostly small (the per-call paths and the edges are what can break; big inputs only cost time),
// with a few big ones that split over threads.
function plainLength(r: SeededRandom, big: number): number {
  const roll = r.u32() % 100;
  if (roll < 25) return r.pick(EDGES);
  if (roll < 55) return r.int(0, 80);
  if (roll < 97) return r.int(0, 5000);
  if (roll < 99) return r.pick(BIG_EDGES);
  // Near a multiple of 16 anywhere up to `big`: crosses thread segments and windows.
  return Math.max(0, Math.min(big, r.int(0, Math.floor(big / BLOCK)) * BLOCK + r.int(-2, 2)));
}

/** A view of `data` at a random (often unaligned) offset inside a larger allocation. */
function placed(r: SeededRandom, data: Buffer): Buffer {
  if (r.chance(0.5)) return Buffer.from(data);
  const lead = r.int(1, 40);
  const host = Buffer.alloc(lead + data.length + r.int(0, 40), r.int(0, 255));
  data.copy(host, lead);
  return host.subarray(lead, lead + data.length);
}

function nodeRawDecrypt(key: Buffer, iv: Buffer, data: Buffer): Buffer {
  const d = createDecipheriv('aes-256-cbc', key, iv);
  d.setAutoPadding(false);
  return Buffer.concat([d.update(data), d.final()]);
}

function nodeRawEncrypt(key: Buffer, iv: Buffer, data: Buffer): Buffer {
  const c = createCipheriv('aes-256-cbc', key, iv);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

/** What node:crypto makes of a sealed blob's ciphertext: the plaintext, or null (it throws). */
function nodeOpen(key: Buffer, iv: Buffer, ct: Buffer): Buffer | null {
  try {
    const d = createDecipheriv('aes-256-cbc', key, iv);
    return Buffer.concat([d.update(ct), d.final()]);
  } catch {
    return null;
  }
}

const MUTATIONS = [
  'none',
  'none',
  'truncate',
  'tamper',
  'tamperTail',
  'wrongKey',
  'badPadding',
  'extend',
  'ivFlip',
] as const;
type Mutation = (typeof MUTATIONS)[number];
/** Mutations that keep the ciphertext whole blocks (what decryptChunk may be given). */
const ALIGNED: readonly Mutation[] = ['none', 'tamper', 'tamperTail', 'wrongKey', 'badPadding'];

interface Blob {
  mutation: Mutation;
  key: Buffer;
  plain: Buffer;
  /** IV ‖ ciphertext, after the mutation; always at least the 16 IV bytes. */
  blob: Buffer;
  /** The key it is opened with (another one for wrongKey). */
  openKey: Buffer;
}

/** A sealed blob of a random plaintext, damaged one way or another. */
function sealedBlob(r: SeededRandom, mutations: readonly Mutation[], length: number): Blob {
  const mutation = r.pick(mutations);
  const key = r.bytes(32);
  const iv = r.bytes(BLOCK);
  let plain = r.bytes(length);
  let blob: Buffer;
  if (mutation === 'badPadding') {
    // A last block whose PKCS#7 padding is wrong: 0, more than 16, or one byte off.
    const body = plain.subarray(0, Math.floor(plain.length / BLOCK) * BLOCK);
    const last = r.bytes(BLOCK);
    const kind = r.int(0, 2);
    if (kind === 0) last[BLOCK - 1] = 0;
    else if (kind === 1) last[BLOCK - 1] = r.int(BLOCK + 1, 255);
    else {
      const pad = r.int(2, BLOCK);
      last.fill(pad, BLOCK - pad);
      const off = r.int(2, pad);
      last[BLOCK - off] = (pad + r.int(1, 255)) & 0xff;
    }
    plain = Buffer.concat([body, last]);
    blob = Buffer.concat([iv, nodeRawEncrypt(key, iv, plain)]);
  } else {
    const c = createCipheriv('aes-256-cbc', key, iv);
    blob = Buffer.concat([iv, c.update(plain), c.final()]);
  }
  let openKey = key;
  switch (mutation) {
    case 'truncate':
      blob = blob.subarray(0, r.int(BLOCK, blob.length - 1));
      break;
    case 'tamper':
    case 'tamperTail': {
      const lo = mutation === 'tamper' ? BLOCK : Math.max(BLOCK, blob.length - 2 * BLOCK);
      const at = r.int(lo, blob.length - 1);
      blob[at] = (blob[at] ?? 0) ^ (1 << r.int(0, 7));
      break;
    }
    case 'wrongKey':
      openKey = r.bytes(32);
      break;
    case 'extend':
      blob = Buffer.concat([blob, r.bytes(r.int(1, 33))]);
      break;
    case 'ivFlip': {
      const at = r.int(0, BLOCK - 1);
      blob[at] = (blob[at] ?? 0) ^ (1 << r.int(0, 7));
      break;
    }
    default:
      break;
  }
  return { mutation, key, plain, blob, openKey };
}

/** Settles like `p`, or rejects when the native call hangs. */
function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle in ${HANG_MS} ms`)), HANG_MS);
  });
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

/** Asserts `e` is the binding's typed error with `code`, and that it does not reveal the key. */
function expectTyped(e: unknown, code: NativeError['code'], key: Buffer): void {
  check(e instanceof Error, `not an Error: ${String(e)}`);
  const err = e as NativeError;
  check(err.code === code, `code ${err.code} (${err.message}), expected ${code}`);
  check(!err.message.includes(key.toString('hex')), 'the error message holds the key');
}

/** A per-case assertion: vitest's expect costs more than a small case does. */
function check(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error(what);
}

/** Where two plaintexts part: their lengths and the first differing 16-byte window. */
function differs(got: Buffer, expected: Buffer): string {
  let i = 0;
  while (i < got.length && i < expected.length && got[i] === expected[i]) i++;
  const at = (buf: Buffer) => buf.subarray(i, i + 16).toString('hex');
  return `plaintext differs at byte ${i} of ${got.length} (expected ${expected.length}): ${at(got)} vs ${at(expected)}`;
}

/**
 * Runs cases [0, count) of one class, `parallel` at a time, each from its own generator seeded by
 * (SEED, class, index). The first failure stops the run and names the case to replay.
 */
async function runCases(
  name: string,
  tag: number,
  count: number,
  parallel: number,
  fn: (r: SeededRandom, slot: number) => Promise<void>,
): Promise<number> {
  let indices: number[];
  if (ONLY) indices = ONLY[0] === name ? [Number(ONLY[1])] : [];
  else indices = Array.from({ length: Math.round(count * SCALE) }, (_, i) => i);
  let next = 0;
  let failure: Error | undefined;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: parallel }, async (_, slot) => {
      while (failure === undefined && next < indices.length) {
        const i = indices[next++] as number;
        try {
          await fn(new SeededRandom(SEED, tag, i), slot);
        } catch (e) {
          failure ??= new Error(
            `fuzz ${name} case ${i} failed; replay: SLUICE_FUZZ_SEED=${SEED} SLUICE_FUZZ_CASE=${name}:${i}` +
              `${small ? ' SLUICE_TEST_SCALE=small' : ''}\n${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
          );
        }
      }
    }),
  );
  if (failure) throw failure;
  console.log(`fuzz ${name}: ${indices.length} cases in ${Date.now() - started} ms`);
  return indices.length;
}

describe(`randomized opening against node:crypto (seed ${SEED})`, () => {
  it.skipIf(!runs('chunk'))(
    'decryptChunk decrypts any run of blocks at any offset, on any thread count',
    async () => {
      const n = await runCases('chunk', 1, COUNTS.chunk, 8, async (r) => {
        const key = r.bytes(32);
        const iv = r.bytes(BLOCK);
        const blocks = Math.ceil(plainLength(r, BIG) / BLOCK);
        const plain = r.bytes(blocks * BLOCK);
        const stream = nodeRawEncrypt(key, iv, plain);
        // A random slice of the stream, with the ciphertext block before it (the IV at 0).
        const first = r.int(0, blocks);
        const last = r.chance(0.5) ? blocks : r.int(first, blocks);
        const ct = placed(r, stream.subarray(first * BLOCK, last * BLOCK));
        const prev = placed(
          r,
          first === 0 ? iv : stream.subarray((first - 1) * BLOCK, first * BLOCK),
        );
        const ctBefore = Buffer.from(ct);
        const slack = r.int(0, 33);
        const out = placed(r, Buffer.alloc(ct.length + slack, 0xa5));
        const threads = r.chance(0.05) ? 64 : r.int(1, 8);
        const written = await bounded(
          b.decryptChunk(ct, prev, key, out, { threads }),
          'decryptChunk',
        );
        check(written === ct.length, `resolved ${written} for ${ct.length} bytes`);
        const expected = plain.subarray(first * BLOCK, last * BLOCK);
        const got = out.subarray(0, written);
        if (!got.equals(expected)) {
          const oracle = nodeRawDecrypt(key, prev, ct).equals(expected) ? 'agrees' : 'DISAGREES';
          throw new Error(`${differs(got, expected)} (node:crypto ${oracle})`);
        }
        check(
          out.subarray(written).every((x) => x === 0xa5),
          'wrote past the ciphertext length',
        );
        check(ct.equals(ctBefore), 'modified its input');
      });
      expect(n).toBeGreaterThan(0);
    },
    600_000,
  );

  it.skipIf(!runs('stream'))(
    'createCipher opens sealed blobs fed in random pieces, or rejects them at final()',
    async () => {
      let rejected = 0;
      const n = await runCases('stream', 2, COUNTS.stream, 8, async (r) => {
        const s = sealedBlob(r, MUTATIONS, plainLength(r, BIG));
        const iv = s.blob.subarray(0, BLOCK);
        const ct = s.blob.subarray(BLOCK);
        const expected = nodeOpen(s.openKey, iv, ct);
        if (s.mutation === 'none')
          check(expected?.equals(s.plain) === true, 'node:crypto round trip');
        if (s.mutation === 'badPadding' || ct.length % BLOCK !== 0) {
          check(expected === null, `node:crypto accepted a ${s.mutation} blob`);
        }
        // Cut at a few random points, some pieces empty or a block give or take a byte.
        const cuts = [0, ct.length];
        for (let k = r.int(0, 5); k > 0; k--) {
          const at = r.int(0, ct.length);
          cuts.push(at, Math.min(ct.length, at + r.pick([0, 1, 15, 16, 17])));
        }
        cuts.sort((x, y) => x - y);
        const pieces = cuts.slice(1).map((end, j) => placed(r, ct.subarray(cuts[j], end)));
        const ctx = b.createCipher('decrypt', s.openKey, Buffer.from(iv));
        const outs: Buffer[] = [];
        let fed = 0;
        if (r.chance(0.3)) {
          // Issued without awaiting: the context must serialise them.
          outs.push(...(await Promise.all(pieces.map((p) => bounded(ctx.update(p), 'update')))));
        } else {
          for (const p of pieces) {
            const o = await bounded(ctx.update(p), 'update');
            fed += p.length;
            outs.push(o);
            const total = outs.reduce((sum, x) => sum + x.length, 0);
            check(o.length % BLOCK === 0 && total <= fed, `update gave ${o.length} bytes`);
          }
        }
        let tail: Buffer | undefined;
        try {
          tail = await bounded(ctx.final(), 'final');
        } catch (e) {
          if (expected !== null) throw e;
          expectTyped(e, 'ERR_BAD_DECRYPT', s.openKey);
          rejected++;
          return;
        }
        if (expected === null) throw new Error(`final() accepted a ${s.mutation} blob`);
        const got = Buffer.concat([...outs, tail]);
        check(got.equals(expected), differs(got, expected));
      });
      expect(n).toBeGreaterThan(0);
      // A fair share of the damaged blobs must have been refused (else the mutations did nothing).
      if (n >= 100) expect(rejected).toBeGreaterThan(n / 10);
    },
    600_000,
  );

  it.skipIf(!runs('pieces'))(
    'decryptChunk opens a sealed blob split at random block offsets, decrypted concurrently',
    async () => {
      const n = await runCases('pieces', 3, COUNTS.pieces, 4, async (r) => {
        const s = sealedBlob(r, ALIGNED, plainLength(r, BIG));
        const iv = s.blob.subarray(0, BLOCK);
        const ct = s.blob.subarray(BLOCK);
        const blocks = ct.length / BLOCK;
        const cuts = new Set([0, blocks]);
        for (let k = r.int(0, 5); k > 0; k--) cuts.add(r.int(0, blocks));
        const edges = [...cuts].sort((x, y) => x - y);
        const out = Buffer.alloc(ct.length + BLOCK, 0x5a);
        await Promise.all(
          edges.slice(1).map((end, j) => {
            const start = (edges[j] as number) * BLOCK;
            const prev = start === 0 ? iv : ct.subarray(start - BLOCK, start);
            return bounded(
              b.decryptChunk(
                ct.subarray(start, end * BLOCK),
                prev,
                s.openKey,
                out.subarray(start),
                {
                  threads: r.int(1, 4),
                },
              ),
              'decryptChunk',
            );
          }),
        );
        const got = out.subarray(0, ct.length);
        const expected = nodeRawDecrypt(s.openKey, iv, ct);
        check(got.equals(expected), differs(got, expected));
        check(
          out.subarray(ct.length).every((x) => x === 0x5a),
          'wrote past the ciphertext length',
        );
        if (s.mutation === 'none') {
          const pad = out[ct.length - 1] ?? 0;
          check(out.subarray(0, ct.length - pad).equals(s.plain), 'not the sealed plaintext');
        }
      });
      expect(n).toBeGreaterThan(0);
    },
    600_000,
  );

  it.skipIf(!runs('file', 'file-mapped'))(
    'decryptFile opens sealed blob files at srcOffset, or fails leaving the destination as it was',
    async () => {
      let rejected = 0;
      const run = (name: string, tag: number, count: number) =>
        runCases(name, tag, count, 2, async (r, slot) => {
          const length = r.chance(0.01) ? r.pick(WINDOW_EDGES) : plainLength(r, BIG);
          const s = sealedBlob(r, MUTATIONS, length);
          // Any bytes may precede the blob in its file (srcOffset = their length + the IV).
          const lead = r.chance(0.5) ? 0 : r.int(1, 40);
          const src = tmp.file(`src-${slot}`);
          const dst = tmp.file(`dst-${slot}`);
          const file = Buffer.concat([r.bytes(lead), s.blob]);
          // Now and then a file that ends before srcOffset (no ciphertext at all).
          const end = r.chance(0.03) ? r.int(0, lead + BLOCK) : file.length;
          writeFileSync(src, file.subarray(0, end));
          rmSync(dst, { force: true });
          const before = r.chance(0.3) ? r.bytes(r.int(0, 100)) : undefined;
          if (before) writeFileSync(dst, before);
          const iv = s.blob.subarray(0, BLOCK);
          const ct = file.subarray(lead + BLOCK, end);
          const expected = nodeOpen(s.openKey, iv, ct);
          const mine = () =>
            readdirSync(tmp.dir)
              .filter((f) => f.endsWith(`-${slot}`))
              .sort();
          const listed = mine();
          let result: { bytesRead: number; bytesWritten: number };
          try {
            result = await bounded(
              b.decryptFile(src, dst, s.openKey, Buffer.from(iv), {
                threads: r.int(1, 4),
                srcOffset: lead + BLOCK,
              }),
              'decryptFile',
            );
          } catch (e) {
            if (expected !== null) throw e;
            expectTyped(e, 'ERR_BAD_DECRYPT', s.openKey);
            if (before) check(readFileSync(dst).equals(before), 'changed the existing destination');
            else check(!existsSync(dst), 'left a destination file');
            check(mine().join() === listed.join(), `left files: ${mine().join()}`);
            rejected++;
            return;
          }
          if (expected === null) throw new Error(`decryptFile accepted a ${s.mutation} blob`);
          check(
            result.bytesRead === ct.length && result.bytesWritten === expected.length,
            `resolved ${JSON.stringify(result)} for ${ct.length} → ${expected.length} bytes`,
          );
          const got = readFileSync(dst);
          check(got.equals(expected), differs(got, expected));
        });
      // Once through O_DIRECT (where the filesystem has it), once through mapped windows; the
      // variable is only changed while no call is in flight (workers read it).
      let n = await run('file', 4, COUNTS.file / 2);
      process.env.SLUICE_NATIVE_NO_DIRECT = '1';
      try {
        n += await run('file-mapped', 5, COUNTS.file / 2);
      } finally {
        delete process.env.SLUICE_NATIVE_NO_DIRECT;
      }
      expect(n).toBeGreaterThan(0);
      // A fair share of the damaged blobs must have been refused (else the mutations did nothing).
      if (n >= 100) expect(rejected).toBeGreaterThan(n / 10);
    },
    600_000,
  );
});
