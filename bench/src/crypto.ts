// pnpm bench:crypto [--size 2GiB] [--reps 3] [--json] [--dir DIR] [--no-write]
// Native backend vs the node:crypto fallback vs `openssl enc` vs `cp`, on one random file, as
// medians of --reps repetitions. Every file output is fsynced, the baselines' too, so each
// ratio compares equally durable work. Writes the table to docs/BENCHMARKS.md.
import { spawn } from 'node:child_process';
import { randomBytes, randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { backend, cryptoBackend } from '@sluice/core';
import { machineInfo, writeBenchmarkSection } from './report.js';
import { formatBytes, median, parseArgs, parseSize, run, timeIt } from './util.js';

const args = parseArgs(process.argv.slice(2));
const size = parseSize(String(args.size ?? '2GiB'));
const reps = Number(args.reps ?? 3);
const json = Boolean(args.json);
const log = (msg: string) => process.stderr.write(`${msg}\n`);

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(String(args.dir ?? tmpdir()), 'sluice-bench-crypto-'));
const key = randomBytes(32);
const iv = randomBytes(16);
const hex = { key: key.toString('hex'), iv: iv.toString('hex') };
const plainPath = join(dir, 'plain.bin');
const cipherPath = join(dir, 'cipher.bin');
const outPath = join(dir, 'out.bin');

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const fh = await open(path, 'w');
  const buf = Buffer.allocUnsafe(8 * MiB);
  try {
    for (let done = 0; done < bytes; ) {
      const n = Math.min(buf.length, bytes - done);
      randomFillSync(buf, 0, n);
      await fh.write(buf, 0, n);
      done += n;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Median seconds of `reps` runs of `fn`, removing `cleanup` paths before every run. */
async function measure(label: string, cleanup: string[], fn: () => Promise<void>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    for (const p of cleanup) await rm(p, { force: true });
    times.push(await timeIt(fn));
  }
  const m = median(times);
  log(
    `  ${label.padEnd(34)} ${(size / m / 1e6).toFixed(0).padStart(6)} MB/s  (median of ${reps}: ${times.map((t) => t.toFixed(2)).join(' ')} s)`,
  );
  return m;
}

/** Runs `node CHILD ...args` in a fresh process and parses the JSON line it prints. */
function child<T>(script: string, args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [new URL(script, import.meta.url).pathname, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
    });
    proc.on('error', reject);
    proc.on('close', (code) => {
      if (code !== 0) reject(new Error(`${script} exited with ${code}`));
      else resolve(JSON.parse(out) as T);
    });
  });
}

/** Peak RSS (MB) of a fresh process doing one file→file decrypt with the given backend. */
async function peakRssOfDecrypt(kind: 'native' | 'node'): Promise<number> {
  const r = await child<{ peakRssMb: number }>('./rssChild.js', [
    kind,
    cipherPath,
    outPath,
    hex.key,
    hex.iv,
  ]);
  return r.peakRssMb;
}

async function main(): Promise<void> {
  const chosen = backend();
  if (chosen.kind !== 'native') {
    throw new Error(`the native backend is not available (${chosen.reason}); run pnpm build first`);
  }
  const native = cryptoBackend('native');
  const node = cryptoBackend('node');
  log(`sluice bench:crypto — ${formatBytes(size)}, ${reps} reps, in ${dir}`);
  // In memory first, in a fresh process, before the file work churns the page cache.
  const memBytes = Math.min(size, 512 * MiB);
  log(`in memory (${formatBytes(memBytes)}, fresh process, contenders interleaved):`);
  const mem = await child<{
    bytes: number;
    native: number;
    nodeUpdate: number;
    nodeBackend: number;
  }>('./memChild.js', [String(memBytes), String(reps)]);
  log(`  native decryptChunk, 8 MiB, 2 threads   ${String(mem.native).padStart(6)} MB/s`);
  log(`  node:crypto update(), 1 MiB slices     ${String(mem.nodeUpdate).padStart(6)} MB/s`);
  log(`  node backend decryptChunk              ${String(mem.nodeBackend).padStart(6)} MB/s`);
  log('generating random input…');
  await writeRandomFile(plainPath, size);
  await native.encryptFile(plainPath, cipherPath, key, iv);
  const cipherSize = statSync(cipherPath).size;

  log('file→file (every output fsynced):');
  const t = {
    cp: await measure('cp + fsync', [outPath], async () => {
      await run('cp', [plainPath, outPath]);
      await fsyncPath(outPath);
    }),
    cpNoFsync: await measure('cp (page cache only, no fsync)', [outPath], () =>
      run('cp', [plainPath, outPath]),
    ),
    opensslEnc: await measure('openssl enc (encrypt) + fsync', [outPath], async () => {
      await run('openssl', [
        'enc',
        '-aes-256-cbc',
        '-K',
        hex.key,
        '-iv',
        hex.iv,
        '-in',
        plainPath,
        '-out',
        outPath,
      ]);
      await fsyncPath(outPath);
    }),
    opensslDec: await measure('openssl enc -d (decrypt) + fsync', [outPath], async () => {
      await run('openssl', [
        'enc',
        '-d',
        '-aes-256-cbc',
        '-K',
        hex.key,
        '-iv',
        hex.iv,
        '-in',
        cipherPath,
        '-out',
        outPath,
      ]);
      await fsyncPath(outPath);
    }),
    nativeEnc: await measure('native encryptFile', [outPath], () =>
      native.encryptFile(plainPath, outPath, key, iv).then(() => undefined),
    ),
    nodeEnc: await measure('node encryptFile', [outPath], () =>
      node.encryptFile(plainPath, outPath, key, iv).then(() => undefined),
    ),
    nativeDec: await measure('native decryptFile (2 threads)', [outPath], () =>
      native.decryptFile(cipherPath, outPath, key, iv, { threads: 2 }).then(() => undefined),
    ),
    nodeDec: await measure('node decryptFile (2 threads)', [outPath], () =>
      node.decryptFile(cipherPath, outPath, key, iv, { threads: 2 }).then(() => undefined),
    ),
  };
  const smallPath = join(dir, 'small.bin');
  const bigPath = join(dir, 'big.bin');
  const smallSize = Math.min(64 * 1024, Math.floor((cipherSize * 3) / 10));
  const splitT = await measure('native split', [smallPath, bigPath], () =>
    native.split(cipherPath, smallPath, bigPath, smallSize),
  );
  const concatT = await measure('native concat', [outPath], () =>
    native.concat([smallPath, bigPath], outPath),
  );

  log('event loop during a native decrypt, and peak RSS of a fresh decrypting process:');
  const h = monitorEventLoopDelay({ resolution: 10 });
  await rm(outPath, { force: true });
  h.enable();
  await native.decryptFile(cipherPath, outPath, key, iv, { threads: 2 });
  h.disable();
  const maxEventLoopDelayMs = h.max / 1e6;
  await rm(outPath, { force: true });
  const peakRssMb = await peakRssOfDecrypt('native');
  await rm(outPath, { force: true });
  const nodePeakRssMb = await peakRssOfDecrypt('node');
  log(
    `  max event-loop delay ${maxEventLoopDelayMs.toFixed(1)} ms; peak RSS native ${peakRssMb.toFixed(0)} MB, node ${nodePeakRssMb.toFixed(0)} MB`,
  );

  const mbps = (bytes: number, s: number) => Math.round(bytes / s / 1e6);
  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  const result = {
    bench: 'crypto',
    sizeBytes: size,
    reps,
    backend: chosen,
    throughputMBps: {
      cp: mbps(size, t.cp),
      cpNoFsync: mbps(size, t.cpNoFsync),
      opensslEncrypt: mbps(size, t.opensslEnc),
      opensslDecrypt: mbps(size, t.opensslDec),
      nativeEncrypt: mbps(size, t.nativeEnc),
      nodeEncrypt: mbps(size, t.nodeEnc),
      nativeDecrypt: mbps(size, t.nativeDec),
      nodeDecrypt: mbps(size, t.nodeDec),
      nativeSplit: mbps(cipherSize, splitT),
      nativeConcat: mbps(cipherSize, concatT),
      memNativeDecryptChunk: mem.native,
      memNodeUpdate: mem.nodeUpdate,
      memNodeBackendDecryptChunk: mem.nodeBackend,
    },
    // Every ratio is throughput over throughput (time of the baseline over time of ours).
    decryptVsCp: ratio(t.cp, t.nativeDec),
    // For reference: against a copy that never reaches the disk (ours is fsynced).
    decryptVsCpNoFsync: ratio(t.cpNoFsync, t.nativeDec),
    decryptVsNode: ratio(t.nodeDec, t.nativeDec),
    decryptVsOpenssl: ratio(t.opensslDec, t.nativeDec),
    encryptVsOpenssl: ratio(t.opensslEnc, t.nativeEnc),
    encryptVsNode: ratio(t.nodeEnc, t.nativeEnc),
    memDecryptVsNode: ratio(mem.native, mem.nodeUpdate),
    splitVsCp: ratio(t.cp * (cipherSize / size), splitT),
    concatVsCp: ratio(t.cp * (cipherSize / size), concatT),
    maxEventLoopDelayMs: Math.round(maxEventLoopDelayMs * 10) / 10,
    peakRssMb: Math.round(peakRssMb),
    nodePeakRssMb: Math.round(nodePeakRssMb),
  };
  const targets = {
    decryptVsCp: result.decryptVsCp >= 0.9,
    decryptVsNode: result.decryptVsNode >= 1.3,
    encryptVsOpenssl: result.encryptVsOpenssl >= 1.4,
    encryptVsNode: result.encryptVsNode >= 1.2,
    memDecryptVsNode: result.memDecryptVsNode >= 2.5,
    splitVsCp: result.splitVsCp >= 0.9,
    concatVsCp: result.concatVsCp >= 0.9,
    maxEventLoopDelayMs: result.maxEventLoopDelayMs < 50,
    peakRssMb: result.peakRssMb < 200,
  };
  const full = { ...result, targetsMet: targets, machine: machineInfo() };

  if (!args['no-write']) writeBenchmarkSection('crypto', renderMarkdown(full));
  if (json) process.stdout.write(`${JSON.stringify(full)}\n`);
  else {
    for (const [k, ok] of Object.entries(targets)) {
      log(`${ok ? 'met ' : 'MISS'} ${k} = ${(result as Record<string, unknown>)[k]}`);
    }
  }
}

type CryptoResult = {
  sizeBytes: number;
  reps: number;
  throughputMBps: Record<string, number>;
  targetsMet: Record<string, boolean>;
  machine: { summary: string };
} & Record<string, unknown>;

function renderMarkdown(r: CryptoResult): string {
  const tp = r.throughputMBps;
  const row = (name: string, value: string, target: string, ok?: boolean) =>
    `| ${name} | ${value} | ${target} | ${ok === undefined ? '' : ok ? 'met' : '**missed**'} |`;
  return [
    `## Crypto (\`pnpm bench:crypto --size ${formatBytes(r.sizeBytes)}\`)`,
    '',
    `Run ${new Date().toISOString()} on ${r.machine.summary}. Medians of ${r.reps} repetitions on one random file (page cache warm).`,
    '',
    'File→file: every output is fsynced, the baselines too (`cp` then fsync, `openssl enc` then fsync),',
    'so each ratio compares equally durable work; `cp` without fsync is listed for reference. The',
    'native addon writes file outputs with O_DIRECT where the filesystem allows it, which skips',
    'page-cache allocation for the fresh output (the dominant cost here).',
    'In memory: a fresh process runs native `decryptChunk` (8 MiB chunks, 2 threads, one reused',
    'output buffer) and `node:crypto` `update()` over 1 MiB slices interleaved, after three warm-up',
    'passes each, so both are measured in their steady state. (`update()` allocates a new output',
    'buffer per call; in its first passes it runs at about a third of its steady speed.) One core',
    'of AES-256-CBC decryption is about 6.8 GB/s here, so with 2 threads the ratio cannot exceed',
    'about 13.6 GB/s over what `update()` reaches on one core.',
    '',
    '| operation | MB/s |',
    '|---|---:|',
    `| cp + fsync | ${tp.cp} |`,
    `| cp, no fsync (page cache only) | ${tp.cpNoFsync} |`,
    `| openssl enc (encrypt) | ${tp.opensslEncrypt} |`,
    `| openssl enc -d (decrypt) | ${tp.opensslDecrypt} |`,
    `| native encryptFile | ${tp.nativeEncrypt} |`,
    `| node encryptFile | ${tp.nodeEncrypt} |`,
    `| native decryptFile (2 threads) | ${tp.nativeDecrypt} |`,
    `| node decryptFile (2 threads) | ${tp.nodeDecrypt} |`,
    `| native split | ${tp.nativeSplit} |`,
    `| native concat | ${tp.nativeConcat} |`,
    `| native decryptChunk, 8 MiB, 2 threads (memory) | ${tp.memNativeDecryptChunk} |`,
    `| node:crypto update(), 1 MiB slices (memory) | ${tp.memNodeUpdate} |`,
    `| node backend decryptChunk (memory) | ${tp.memNodeBackendDecryptChunk} |`,
    '',
    '| ratio | value | target | |',
    '|---|---:|---|---|',
    row('decryptVsCp', String(r.decryptVsCp), '≥ 0.9', r.targetsMet.decryptVsCp),
    row('decryptVsCpNoFsync (reference)', String(r.decryptVsCpNoFsync), '', undefined),
    row('decryptVsNode', String(r.decryptVsNode), '≥ 1.3', r.targetsMet.decryptVsNode),
    row('decryptVsOpenssl', String(r.decryptVsOpenssl), '', undefined),
    row('encryptVsOpenssl', String(r.encryptVsOpenssl), '≥ 1.4', r.targetsMet.encryptVsOpenssl),
    row('encryptVsNode', String(r.encryptVsNode), '≥ 1.2', r.targetsMet.encryptVsNode),
    row('memDecryptVsNode', String(r.memDecryptVsNode), '≥ 2.5', r.targetsMet.memDecryptVsNode),
    row('splitVsCp', String(r.splitVsCp), '≥ 0.9', r.targetsMet.splitVsCp),
    row('concatVsCp', String(r.concatVsCp), '≥ 0.9', r.targetsMet.concatVsCp),
    row(
      'maxEventLoopDelayMs',
      String(r.maxEventLoopDelayMs),
      '< 50',
      r.targetsMet.maxEventLoopDelayMs,
    ),
    row('peakRssMb (native decrypt)', String(r.peakRssMb), '< 200', r.targetsMet.peakRssMb),
    row('peakRssMb (node decrypt)', String(r.nodePeakRssMb), '', undefined),
    '',
  ].join('\n');
}

main()
  .catch((err) => {
    process.stderr.write(
      `bench:crypto failed: ${err instanceof Error ? err.stack : String(err)}\n`,
    );
    process.exitCode = 1;
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }));
