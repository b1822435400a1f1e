// pnpm bench:pull [--size 2GiB] [--reps 3] [--json] [--dir DIR] [--no-write]
// The product on the embedded default, end to end: the real resource API on loopback over a
// temp data directory (in this process), an uploader and a device user, one generated file.
// Push (a fresh client process) vs `cp` + fsync of the same file; pull (a fresh client process,
// its peak RSS is the pull's alone) vs `curl` fetching the same big part from the same server
// into a file + fsync. Medians of --reps, each contender interleaved with its baseline. The
// pulled plaintext's SHA-256 is checked against the source after every pull. Writes the
// `## Pull` section of docs/BENCHMARKS.md.
import { type ChildProcess, spawn } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, rm, stat, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { backend, blobSize, DEFAULT_SMALL_SIZE_KB, smallPartSize } from '@sluice/core';
import type { PullChildJob, PullChildResult } from './pullChild.js';
import { bigPartPath, type PullServer, startPullServer } from './pullServer.js';
import { machineInfo, writeBenchmarkSection } from './report.js';
import { formatBytes, median, parseArgs, parseSize, run, timeIt } from './util.js';

const args = parseArgs(process.argv.slice(2));
const size = parseSize(String(args.size ?? '2GiB'));
const reps = Number(args.reps ?? 3);
if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a positive integer`);
const json = Boolean(args.json);
const log = (msg: string) => process.stderr.write(`${msg}\n`);

const MiB = 1024 * 1024;
const FOLDER = 'models';
const NAME = 'model.bin';
const UPLOADER = 'uploader@bench.invalid';
const DEVICE = 'device@bench.invalid';
// A fixed stand-in for the device's hardware hash: the first pull binds it, later pulls match.
const HARDWARE = createHash('sha256').update('sluice bench:pull device').digest('hex');

const dir = mkdtempSync(join(String(args.dir ?? tmpdir()), 'sluice-bench-pull-'));
const paths = {
  src: join(dir, 'model.bin'),
  cp: join(dir, 'cp.bin'),
  pulled: join(dir, 'pulled.bin'),
  curl: join(dir, 'curl.bin'),
  headers: join(dir, 'curl-headers'),
  uploadTmp: join(dir, 'upload-tmp'),
  data: join(dir, 'data'),
};
const children = new Set<ChildProcess>();
let server: PullServer | undefined;

function removeAll(): void {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`bench:pull: ${sig}, removing ${dir}`);
    removeAll();
    process.exit(130);
  });
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Incompressible bytes fast: an AES-256-CTR keystream. Returns the file's SHA-256 (hex). */
async function writePseudoModel(path: string, bytes: number): Promise<string> {
  const ctr = createCipheriv('aes-256-ctr', randomBytes(32), randomBytes(16));
  const zeros = Buffer.alloc(8 * MiB);
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let done = 0; done < bytes; ) {
      const n = Math.min(zeros.length, bytes - done);
      const block = ctr.update(zeros.subarray(0, n));
      hash.update(block);
      await fh.write(block, 0, block.length);
      done += n;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const d of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(d);
  return hash.digest('hex');
}

/** Runs pullChild.js with `job` on stdin; resolves with the JSON line it prints. */
function client(job: PullChildJob): Promise<PullChildResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [new URL('./pullChild.js', import.meta.url).pathname], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.add(proc);
    let out = '';
    proc.stdout?.on('data', (d) => {
      out += d;
    });
    proc.on('error', reject);
    proc.on('close', (code) => {
      children.delete(proc);
      if (code !== 0) reject(new Error(`pullChild (${job.op}) exited with ${code}`));
      else resolve(JSON.parse(out) as PullChildResult);
    });
    proc.stdin?.end(JSON.stringify(job));
  });
}

interface Series {
  seconds: number[];
}
const fmt = (xs: number[]) => xs.map((t) => t.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const chosen = backend();
  log(
    `sluice bench:pull — ${formatBytes(size)}, ${reps} reps, in ${dir} (crypto backend: ${chosen.kind})`,
  );
  const loadBefore = loadavg();
  log('generating the pseudo-model…');
  const srcSha = await writePseudoModel(paths.src, size);
  await mkdir(paths.uploadTmp);
  const bigSize = blobSize(size) - smallPartSize(blobSize(size), DEFAULT_SMALL_SIZE_KB);

  server = await startPullServer(paths.data);
  const api = server;
  await api.createUser(UPLOADER, 'ResourceUploader');
  await api.createUser(DEVICE, 'Operator');
  const login = { apiUrl: api.url, password: api.password, name: NAME, folder: FOLDER };

  log('push (fresh client process) vs cp + fsync, interleaved:');
  const push: Series = { seconds: [] };
  const cp: Series = { seconds: [] };
  let version = 0;
  for (let i = 0; i < reps; i++) {
    // One version on the server at a time (each push would otherwise keep another copy).
    await api.deleteResource(FOLDER, NAME);
    await rm(paths.cp, { force: true });
    const contenders = [
      async () => {
        const r = await client({
          ...login,
          op: 'push',
          email: UPLOADER,
          src: paths.src,
          tempDir: paths.uploadTmp,
        });
        push.seconds.push(r.seconds);
        version = r.version ?? 0;
      },
      async () => {
        cp.seconds.push(
          await timeIt(async () => {
            await run('cp', [paths.src, paths.cp]);
            await fsyncPath(paths.cp);
          }),
        );
      },
    ];
    if (i % 2 === 1) contenders.reverse();
    for (const c of contenders) await c();
  }
  await rm(paths.cp, { force: true });
  log(`  push          ${fmt(push.seconds)} s`);
  log(`  cp + fsync    ${fmt(cp.seconds)} s`);

  log('pull (fresh client process) vs curl + fsync of the big part, interleaved:');
  const pull: Series & { rssMb: number[]; firstProgress: number[] } = {
    seconds: [],
    rssMb: [],
    firstProgress: [],
  };
  const curl: Series = { seconds: [] };
  const url = `${api.url}${bigPartPath(FOLDER, NAME, version)}`;
  for (let i = 0; i < reps; i++) {
    await rm(paths.pulled, { force: true });
    await rm(paths.curl, { force: true });
    // A fresh token per run (they live 15 minutes), in a 0600 file: not on curl's command line.
    await writeFile(paths.headers, `Authorization: Bearer ${await api.accessToken(DEVICE)}\n`, {
      mode: 0o600,
    });
    const contenders = [
      async () => {
        const r = await client({
          ...login,
          op: 'pull',
          email: DEVICE,
          to: paths.pulled,
          hardware: HARDWARE,
        });
        pull.seconds.push(r.seconds);
        pull.rssMb.push(r.peakRssMb);
        if (r.firstProgressSeconds !== undefined) pull.firstProgress.push(r.firstProgressSeconds);
        if (r.size !== size) throw new Error(`pull returned ${r.size} bytes, expected ${size}`);
      },
      async () => {
        curl.seconds.push(
          await timeIt(async () => {
            await run('curl', ['-s', '-f', '-o', paths.curl, '-H', `@${paths.headers}`, url]);
            await fsyncPath(paths.curl);
          }),
        );
        const got = (await stat(paths.curl)).size;
        if (got !== bigSize) throw new Error(`curl fetched ${got} bytes, expected ${bigSize}`);
      },
    ];
    if (i % 2 === 1) contenders.reverse();
    for (const c of contenders) await c();
    await rm(paths.curl, { force: true });
    const sha = await sha256Of(paths.pulled);
    if (sha !== srcSha)
      throw new Error(`pulled SHA-256 ${sha} differs from the source's ${srcSha}`);
  }
  log(
    `  pull          ${fmt(pull.seconds)} s  (peak RSS ${pull.rssMb.map((m) => m.toFixed(0)).join(' ')} MB)`,
  );
  log(`  curl + fsync  ${fmt(curl.seconds)} s`);
  log(`  pulled SHA-256 matched the source in all ${reps} runs`);
  const loadAfter = loadavg();

  const mbps = (bytes: number, s: number) => Math.round(bytes / s / 1e6);
  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  const t = {
    push: median(push.seconds),
    cp: median(cp.seconds),
    pull: median(pull.seconds),
    curl: median(curl.seconds),
  };
  const result = {
    bench: 'pull',
    sizeBytes: size,
    bigPartBytes: bigSize,
    reps,
    backend: chosen,
    seconds: { push: push.seconds, cp: cp.seconds, pull: pull.seconds, curl: curl.seconds },
    throughputMBps: {
      push: mbps(size, t.push),
      cp: mbps(size, t.cp),
      pull: mbps(size, t.pull),
      curl: mbps(bigSize, t.curl),
    },
    // Throughput over throughput: the pull writes `size` plaintext bytes, curl `bigSize` bytes.
    pullVsCurl: ratio(size / t.pull, bigSize / t.curl),
    pushVsCp: ratio(t.cp, t.push),
    peakRssMb: Math.round(Math.max(...pull.rssMb)),
    pullFirstProgressSeconds: Math.round(median(pull.firstProgress) * 100) / 100,
    loadAverage: { before: loadBefore.map(round2), after: loadAfter.map(round2) },
  };
  const targets = {
    pullVsCurl: result.pullVsCurl >= 0.8,
    peakRssMb: result.peakRssMb < 250,
  };
  const full = { ...result, targetsMet: targets, machine: machineInfo() };
  if (!args['no-write']) writeBenchmarkSection('pull', renderMarkdown(full));
  if (json) process.stdout.write(`${JSON.stringify(full)}\n`);
  else {
    log(
      `  throughput MB/s: push ${result.throughputMBps.push}, cp ${result.throughputMBps.cp}, pull ${result.throughputMBps.pull}, curl ${result.throughputMBps.curl}`,
    );
    log(`     pushVsCp = ${result.pushVsCp}`);
    for (const [k, ok] of Object.entries(targets)) {
      log(`${ok ? 'met ' : 'MISS'} ${k} = ${(result as Record<string, unknown>)[k]}`);
    }
  }
}

const round2 = (n: number) => Math.round(n * 100) / 100;

type PullResult = {
  sizeBytes: number;
  bigPartBytes: number;
  reps: number;
  seconds: Record<string, number[]>;
  throughputMBps: Record<string, number>;
  pullVsCurl: number;
  pushVsCp: number;
  peakRssMb: number;
  pullFirstProgressSeconds: number;
  loadAverage: { before: number[]; after: number[] };
  targetsMet: Record<string, boolean>;
  machine: { summary: string };
};

function renderMarkdown(r: PullResult): string {
  const tp = r.throughputMBps;
  const s = r.seconds;
  const row = (name: string, value: string, target: string, ok?: boolean) =>
    `| ${name} | ${value} | ${target} | ${ok === undefined ? '' : ok ? 'met' : '**missed**'} |`;
  return [
    `## Pull (\`pnpm bench:pull --size ${formatBytes(r.sizeBytes)}\`)`,
    '',
    `Run ${new Date().toISOString()} on ${r.machine.summary}. Medians of ${r.reps} repetitions;`,
    `load average (1, 5, 15 min) ${r.loadAverage.before.join(', ')} before and ${r.loadAverage.after.join(', ')} after.`,
    '',
    'The embedded default on one machine: the resource API (`createServer`, data directory on the',
    'same disk as the files) runs in the bench process on loopback; every client is a fresh Node',
    'process that logs in first (untimed). Each contender runs interleaved with its baseline,',
    'alternating which goes first. Page cache warm: the server reads the big part it has just stored.',
    '',
    '- **push**: `uploadBigSmallResource` of the generated file: encrypt with a fresh data key,',
    '  split, chunk digests, multipart upload of small part, big part, manifest and data key to the',
    '  server, which streams the big part to disk, fsyncs it and checks every chunk digest.',
    '  Baseline: `cp` of the same file, then fsync of the copy.',
    `- **pull**: \`loadBigSmallResource\` to a file as the device user: device envelope (scrypt KDF),`,
    '  the big part as 8 MiB ranged GETs, 8 in flight, each chunk checked against its manifest',
    '  digest, decrypted and written at its offset into a temp file, which is fsynced and renamed',
    '  into place. No local cache. Baseline: `curl -s -f -o FILE -H @headers URL` of the same big',
    `  part (one GET, ${formatBytes(r.bigPartBytes)} ciphertext) from the same server, then fsync of`,
    '  the file. After every pull the plaintext SHA-256 is checked against the source (untimed).',
    '- **peakRssMb**: VmHWM of the pulling process (the largest of the runs), Node itself included.',
    '',
    '| operation | MB/s | seconds per run |',
    '|---|---:|---|',
    `| push | ${tp.push} | ${fmt(s.push ?? [])} |`,
    `| cp + fsync | ${tp.cp} | ${fmt(s.cp ?? [])} |`,
    `| pull | ${tp.pull} | ${fmt(s.pull ?? [])} |`,
    `| curl + fsync (big part) | ${tp.curl} | ${fmt(s.curl ?? [])} |`,
    '',
    '| ratio | value | target | |',
    '|---|---:|---|---|',
    row('pullVsCurl', String(r.pullVsCurl), '≥ 0.8', r.targetsMet.pullVsCurl),
    row('pushVsCp', String(r.pushVsCp), '', undefined),
    row('peakRssMb (pulling process)', String(r.peakRssMb), '< 250', r.targetsMet.peakRssMb),
    row('pull: start to first progress (s)', String(r.pullFirstProgressSeconds), '', undefined),
    '',
  ].join('\n');
}

main()
  .catch((err) => {
    process.stderr.write(`bench:pull failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await server?.close().catch(() => {});
    removeAll();
  });
