import { randomFillSync } from 'node:crypto';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  backend,
  isSluiceError,
  joinAndOpen,
  type Manifest,
  SluiceError,
  sealAndSplit,
  sha256File,
  sha256FileChunks,
} from '@sluice/core';
import { type Command, EXIT, UsageError } from '../command.js';

const MiB = 1024 * 1024;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run the protection scheme end to end on this machine on a generated pseudo-model',
  usage: '[--size 512MiB] [--dir DIR] [--json]',
  help: [
    '  --size SIZE   pseudo-model size (KiB, MiB, GiB); default 512MiB',
    '  --dir DIR     work directory (default: a new temp dir, removed afterwards)',
    '  --json        print one JSON object with every step and its timing',
  ],
  options: { size: { type: 'string' }, dir: { type: 'string' }, json: { type: 'boolean' } },
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const size = parseSize(String(values.size ?? '512MiB'));
    const dir = await mkdtemp(
      join(typeof values.dir === 'string' ? values.dir : tmpdir(), 'sluice-demo-'),
    );
    const steps: { step: string; ms: number; detail: string }[] = [];
    const say = (step: string, ms: number, detail: string) => {
      steps.push({ step, ms: Math.round(ms), detail });
      if (!values.json)
        io.err(`${step.padEnd(10)} ${String(Math.round(ms)).padStart(6)} ms  ${detail}`);
    };
    const timed = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
      const t0 = performance.now();
      const r = await fn();
      return [r, performance.now() - t0];
    };
    const rate = (ms: number) => `${(size / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
    try {
      const b = backend();
      if (!values.json)
        io.err(
          `sluice demo: ${formatSize(size)} pseudo-model, ${b.kind} crypto backend (${b.reason})`,
        );
      const model = join(dir, 'model.bin');
      const [, genMs] = await timed(() => writePseudoModel(model, size));
      say('generate', genMs, `${model} (${formatSize(size)})`);
      const [plainDigest, hashMs] = await timed(() => sha256File(model));
      say('hash', hashMs, `plaintext SHA-256 ${plainDigest.toString('hex')}`);

      const [sealed, sealMs] = await timed(() => sealAndSplit(model, { dir, smallSizeKB: 1024 }));
      const m = sealed.manifest;
      say(
        'seal',
        sealMs,
        `fresh data key; blob ${m.blobSize} bytes → small ${m.smallSize} + big ${m.bigSize} in ${m.chunks.length} chunks of ${formatSize(m.chunkSize)} (${rate(sealMs)})`,
      );

      const [, verifyMs] = await timed(() => verifyBigPart(sealed.bigPath, m));
      say(
        'verify',
        verifyMs,
        `every big-part chunk matches its manifest digest (${rate(verifyMs)})`,
      );

      const out = join(dir, 'model.out');
      const [, openMs] = await timed(() =>
        joinAndOpen(sealed.smallPath, sealed.bigPath, out, sealed.key),
      );
      const outDigest = await sha256File(out);
      if (!outDigest.equals(plainDigest))
        throw new SluiceError(
          'ERR_BAD_DECRYPT',
          'demo: the reassembled model differs from the original',
        );
      say(
        'open',
        openMs,
        `small + big reassembled and decrypted; SHA-256 matches (${rate(openMs)})`,
      );

      // A tampered big part must be refused by its chunk digest, not decrypted into garbage.
      const fh = await open(sealed.bigPath, 'r+');
      await fh.write(Buffer.from([0xff ^ (await firstByte(sealed.bigPath))]), 0, 1, 0);
      await fh.close();
      const refused = await verifyBigPart(sealed.bigPath, m).then(
        () => false,
        (e) => isSluiceError(e, 'ERR_CHUNK_DIGEST'),
      );
      if (!refused) throw new Error('demo: a tampered big part was not detected');
      say('tamper', 0, 'one flipped byte in the big part → ERR_CHUNK_DIGEST, refused');

      if (values.json) io.out(JSON.stringify({ ok: true, sizeBytes: size, backend: b, steps }));
      else io.err('sluice demo: every step held');
      return EXIT.ok;
    } finally {
      if (typeof values.dir !== 'string') await rm(dir, { recursive: true, force: true });
    }
  },
};

async function verifyBigPart(bigPath: string, m: Manifest): Promise<void> {
  const digests = await sha256FileChunks(bigPath, m.chunkSize);
  if (digests.length !== m.chunks.length)
    throw new SluiceError(
      'ERR_CHUNK_DIGEST',
      `big part has ${digests.length} chunks, manifest ${m.chunks.length}`,
    );
  digests.forEach((d, i) => {
    if (d.toString('hex') !== m.chunks[i])
      throw new SluiceError(
        'ERR_CHUNK_DIGEST',
        `big-part chunk ${i} does not match its manifest digest`,
      );
  });
}

async function firstByte(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 0);
    return b[0] as number;
  } finally {
    await fh.close();
  }
}

/** Random-looking bytes, as a real model's weights are: AES gains nothing from repetition. */
async function writePseudoModel(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w');
  const buf = Buffer.allocUnsafe(8 * MiB);
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(buf.length, size - done);
      randomFillSync(buf, 0, n);
      await fh.write(buf, 0, n);
      done += n;
    }
  } finally {
    await fh.close();
  }
  if ((await stat(path)).size !== size) throw new Error('demo: short write of the pseudo-model');
}

const UNITS: Record<string, number> = {
  b: 1,
  kib: 1024,
  k: 1024,
  mib: MiB,
  m: MiB,
  gib: 1024 * MiB,
  g: 1024 * MiB,
};

function parseSize(text: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? UNITS[(m[2] || 'b').toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UsageError(`bad size '${text}' (try 512MiB or 2GiB)`);
  return Number(m[1]) * unit;
}

function formatSize(n: number): string {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(2)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  return `${n} bytes`;
}
