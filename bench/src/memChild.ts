// The in-memory comparison in a fresh process: `node memChild.js BYTES REPS`. Native
// decryptChunk (8 MiB chunks, 2 threads, one reused output buffer) and node:crypto update()
// over 1 MiB slices (what a user would write) run interleaved, after warm-up passes, so both
// see the same process and allocator state. Prints one JSON object of medians in MB/s.
import { createDecipheriv, randomBytes, randomFillSync } from 'node:crypto';
import { cryptoBackend } from '@sluice/core';
import { median } from './util.js';

const bytes = Number(process.argv[2]);
const reps = Number(process.argv[3]);
const MiB = 1024 * 1024;
const chunk = 8 * MiB;
const total = bytes - (bytes % chunk) || chunk;
const key = randomBytes(32);
const iv = randomBytes(16);
const cipher = Buffer.allocUnsafe(total);
randomFillSync(cipher);
const out = Buffer.allocUnsafe(chunk);
const native = cryptoBackend('native');
const node = cryptoBackend('node');
const prev = (off: number) => (off === 0 ? iv : cipher.subarray(off - 16, off));

const contenders: Record<string, () => Promise<void> | void> = {
  native: async () => {
    for (let off = 0; off < total; off += chunk) {
      await native.decryptChunk(cipher.subarray(off, off + chunk), prev(off), key, out, {
        threads: 2,
      });
    }
  },
  nodeUpdate: () => {
    const d = createDecipheriv('aes-256-cbc', key, iv).setAutoPadding(false);
    for (let off = 0; off < total; off += MiB) d.update(cipher.subarray(off, off + MiB));
  },
  nodeBackend: async () => {
    for (let off = 0; off < total; off += chunk) {
      await node.decryptChunk(cipher.subarray(off, off + chunk), prev(off), key, out, {
        threads: 2,
      });
    }
  },
};

// Both sides must compute the same bytes: compare the first chunk.
const first = cipher.subarray(0, chunk);
const mine = await native.decryptChunk(first, iv, key, out, { threads: 2 });
const ref = createDecipheriv('aes-256-cbc', key, iv).setAutoPadding(false).update(first);
if (!ref.equals(mine)) throw new Error('native decryptChunk disagrees with node:crypto');

// Warm-up: update() allocates a fresh output buffer per call, and its first passes over the
// data run at a third of its steady speed while the allocator's heap grows; measure the steady
// state, which is what a long-running process sees.
const WARMUP = 3;
const times: Record<string, number[]> = {};
for (const [name, fn] of Object.entries(contenders)) {
  for (let i = 0; i < WARMUP; i++) await fn();
  times[name] = [];
}
for (let i = 0; i < reps; i++) {
  for (const [name, fn] of Object.entries(contenders)) {
    const t0 = process.hrtime.bigint();
    await fn();
    times[name]?.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
}
const mbps = (name: string) => Math.round(total / median(times[name] ?? []) / 1e6);
process.stdout.write(
  `${JSON.stringify({ bytes: total, native: mbps('native'), nodeUpdate: mbps('nodeUpdate'), nodeBackend: mbps('nodeBackend') })}\n`,
);
