// pnpm bench:pull [--size 2GiB] [--reps 3] [--json] [--dir DIR] [--no-write] [--s3] [--one-core]
// The product on the embedded default, end to end: the real resource API on loopback over a
// temp data directory (in this process), an uploader and a device user, one generated file.
// Push (a fresh client process) vs `cp` + fsync of the same file; pull (a fresh client process,
// its peak RSS is the pull's alone) vs `curl` fetching the same big part from the same server
// into a file + fsync. Medians of --reps, each contender interleaved with its baseline. The
// pulled plaintext's SHA-256 is checked against the source after every pull. Writes the
// `## Pull` section of docs/BENCHMARKS.md.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { backend, blobSize, DEFAULT_SMALL_SIZE_KB, smallPartSize } from '@sluice/core';
import { fsyncPath, jsonChild, sha256Of, writePseudoModel } from './benchFiles.js';
import { type PhysicalLimit, physicalLimit } from './physicalLimit.js';
import type { PullChildJob, PullChildResult } from './pullChild.js';
import { bigPartPath, type PullServer, startPullServer } from './pullServer.js';
import type { PullStage, PullStagesJob, PullStagesResult } from './pullStages.js';
import { machineInfo, writeBenchmarkSection } from './report.js';
import { formatBytes, median, parseArgs, parseSize, run, timeIt } from './util.js';

const args = parseArgs(process.argv.slice(2));
if (args.s3) {
  // The same comparison against a throwaway Ceph RGW (pullS3.ts); none of the code below runs.
  const { pullS3 } = await import('./pullS3.js');
  await pullS3(args);
  process.exit();
}
const size = parseSize(String(args.size ?? '2GiB'));
const reps = Number(args.reps ?? 3);
if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a positive integer`);
const json = Boolean(args.json);
const log = (msg: string) => process.stderr.write(`${msg}\n`);

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

/** Runs `node SCRIPT` with `job` as JSON on stdin; resolves with the JSON line it prints. */
function child<T>(script: string, job: object): Promise<T> {
  return jsonChild<T>(script, job, children);
}
const client = (job: PullChildJob, cpus?: string) =>
  jsonChild<PullChildResult>('./pullChild.js', job, children, cpus);

/** CPU seconds this process (the server) spends while `fn` runs. */
async function serverCpu(fn: () => Promise<void>): Promise<number> {
  const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

/**
 * Runs curl under bash and returns curl's CPU seconds (user + system), read from bash's `times`
 * (its second line is the children's). bash adds a few milliseconds of start-up to the timing.
 */
function curlCpu(curlArgs: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const proc = spawn('bash', ['-c', 'curl "$@" && times', 'bash', ...curlArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(proc);
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => {
      out += d;
    });
    proc.stderr.on('data', (d) => {
      err += d;
    });
    proc.on('error', reject);
    proc.on('close', (code) => {
      children.delete(proc);
      const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/m.exec(out.trim().split('\n')[1] ?? '');
      if (code !== 0) reject(new Error(`curl exited with ${code}: ${err.trim()}`));
      else if (!m) reject(new Error(`no CPU times from bash: ${out}`));
      else resolve(Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]));
    });
  });
}

const fmt = (xs: number[]) => xs.map((t) => t.toFixed(2)).join(' ');
const med = (xs: number[]) => Math.round(median(xs) * 100) / 100;
const STAGE_LABEL: Record<PullStage, string> = {
  transport: 'receive only',
  verify: '+ SHA-256 verify',
  decrypt: '+ decrypt (no write)',
};
const STAGES: PullStage[] = ['transport', 'verify', 'decrypt'];

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
  const push = {
    seconds: [] as number[],
    rssMb: [] as number[],
    cpu: [] as number[],
    serverCpu: [] as number[],
  };
  const cp: number[] = [];
  let version = 0;
  for (let i = 0; i < reps; i++) {
    // One version on the server at a time (each push would otherwise keep another copy).
    await api.deleteResource(FOLDER, NAME);
    await rm(paths.cp, { force: true });
    const contenders = [
      async () => {
        let r: PullChildResult | undefined;
        push.serverCpu.push(
          await serverCpu(async () => {
            r = await client({
              ...login,
              op: 'push',
              email: UPLOADER,
              src: paths.src,
              tempDir: paths.uploadTmp,
            });
          }),
        );
        if (r === undefined) throw new Error('no push result');
        push.seconds.push(r.seconds);
        push.rssMb.push(r.peakRssMb);
        push.cpu.push(r.cpuSeconds);
        version = r.version ?? 0;
      },
      async () => {
        cp.push(
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
  log(`  push          ${fmt(push.seconds)} s  (peak RSS ${fmt(push.rssMb)} MB)`);
  log(`  cp + fsync    ${fmt(cp)} s`);

  log('pull (fresh client process) vs curl + fsync of the big part, interleaved:');
  const pull = {
    seconds: [] as number[],
    rssMb: [] as number[],
    cpu: [] as number[],
    serverCpu: [] as number[],
    first: [] as number[],
    tail: [] as number[],
  };
  const curl = { seconds: [] as number[], serverCpu: [] as number[], cpu: [] as number[] };
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
        let r: PullChildResult | undefined;
        pull.serverCpu.push(
          await serverCpu(async () => {
            r = await client({
              ...login,
              op: 'pull',
              email: DEVICE,
              to: paths.pulled,
              hardware: HARDWARE,
            });
          }),
        );
        if (r === undefined) throw new Error('no pull result');
        if (r.size !== size) throw new Error(`pull returned ${r.size} bytes, expected ${size}`);
        pull.seconds.push(r.seconds);
        pull.rssMb.push(r.peakRssMb);
        pull.cpu.push(r.cpuSeconds);
        pull.first.push(r.firstProgressSeconds ?? Number.NaN);
        pull.tail.push(r.seconds - (r.lastProgressSeconds ?? Number.NaN));
      },
      async () => {
        curl.serverCpu.push(
          await serverCpu(async () => {
            curl.seconds.push(
              await timeIt(async () => {
                curl.cpu.push(
                  await curlCpu(['-s', '-f', '-o', paths.curl, '-H', `@${paths.headers}`, url]),
                );
                await fsyncPath(paths.curl);
              }),
            );
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
  await rm(paths.pulled, { force: true });
  log(`  pull          ${fmt(pull.seconds)} s  (peak RSS ${fmt(pull.rssMb)} MB)`);
  log(`  curl + fsync  ${fmt(curl.seconds)} s`);
  log(`  pulled SHA-256 matched the source in all ${reps} runs`);

  let oneCore: { seconds: number[]; cpu: number[] } | undefined;
  if (args['one-core']) {
    // The client pinned to one core (`taskset -c 0`), as on a Jetson-class device; the server
    // keeps both.
    log('pull with the client on one core (taskset -c 0):');
    oneCore = { seconds: [], cpu: [] };
    for (let i = 0; i < reps; i++) {
      await rm(paths.pulled, { force: true });
      const job = { ...login, op: 'pull', email: DEVICE, to: paths.pulled, hardware: HARDWARE };
      const r = await client(job as PullChildJob, '0');
      if (r.size !== size) throw new Error(`pull returned ${r.size} bytes, expected ${size}`);
      oneCore.seconds.push(r.seconds);
      oneCore.cpu.push(r.cpuSeconds);
    }
    await rm(paths.pulled, { force: true });
    log(`  pull, 1 core  ${fmt(oneCore.seconds)} s`);
  }
  const limit = await physicalLimit(size, cpus().length);
  log(
    `physical limit: AES-256-CBC ${limit.aesDecryptMBps} MB/s, SHA-256 ${limit.sha256MBps} MB/s, ` +
      `loopback ${limit.loopbackMBps} MB/s (one thread each): a pull of ${formatBytes(size)} ` +
      `at best ${limit.bestSeconds} s on ${limit.cores} cores, ${limit.bestSecondsOneCore} s on one`,
  );

  let profile: Record<PullStage, PullStagesResult[]> | undefined;
  if (args.profile) {
    log('profile: the big part through the same driver, doing more per chunk (fresh processes):');
    profile = { transport: [], verify: [], decrypt: [] };
    for (let i = 0; i < reps; i++) {
      for (const stage of STAGES) {
        const job: PullStagesJob = { ...login, stage, email: DEVICE, hardware: HARDWARE };
        profile[stage].push(await child<PullStagesResult>('./pullStages.js', job));
      }
    }
    for (const stage of STAGES) {
      log(`  ${stage.padEnd(10)} ${fmt(profile[stage].map((r) => r.bigSeconds))} s`);
    }
  }
  const loadAfter = loadavg();

  const mbps = (bytes: number, s: number) => Math.round(bytes / s / 1e6);
  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  const t = {
    push: median(push.seconds),
    cp: median(cp),
    pull: median(pull.seconds),
    curl: median(curl.seconds),
  };
  const result: PullResult = {
    bench: 'pull',
    sizeBytes: size,
    bigPartBytes: bigSize,
    reps,
    backend: chosen,
    seconds: { push: push.seconds, cp, pull: pull.seconds, curl: curl.seconds },
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
    pushPeakRssMb: Math.round(Math.max(...push.rssMb)),
    cpuSeconds: {
      pullClient: med(pull.cpu),
      pullServer: med(pull.serverCpu),
      curlServer: med(curl.serverCpu),
      curlClient: med(curl.cpu),
      pushClient: med(push.cpu),
      pushServer: med(push.serverCpu),
    },
    clientCpuSecondsPerGiB: {
      pull: perGiB(med(pull.cpu), size),
      curl: perGiB(med(curl.cpu), bigSize),
      push: perGiB(med(push.cpu), size),
    },
    serverCpuSecondsPerGiB: {
      pull: perGiB(med(pull.serverCpu), size),
      curl: perGiB(med(curl.serverCpu), bigSize),
      push: perGiB(med(push.serverCpu), size),
    },
    pullCpuSecondsPerGiB: perGiB(med(pull.cpu), size),
    physicalLimit: limit,
    ...(oneCore === undefined
      ? {}
      : {
          oneCore: {
            pullSeconds: med(oneCore.seconds),
            pullMBps: mbps(size, median(oneCore.seconds)),
            clientCpuSecondsPerGiB: perGiB(med(oneCore.cpu), size),
          },
        }),
    pullPhasesSeconds: {
      envelope: med(pull.first),
      bigPart: med(pull.seconds.map((s, i) => s - (pull.first[i] ?? 0) - (pull.tail[i] ?? 0))),
      fsyncRename: med(pull.tail),
    },
    ...(profile === undefined
      ? {}
      : {
          profile: Object.fromEntries(
            STAGES.map((st) => {
              const rs = profile[st];
              return [
                st,
                {
                  bigSeconds: med(rs.map((r) => r.bigSeconds)),
                  envelopeSeconds: med(rs.map((r) => r.envelopeSeconds)),
                  cpuSeconds: med(rs.map((r) => r.cpuSeconds)),
                  peakRssMb: Math.round(Math.max(...rs.map((r) => r.peakRssMb))),
                },
              ];
            }),
          ) as PullResult['profile'],
        }),
    loadAverage: { before: loadBefore.map(round2), after: loadAfter.map(round2) },
    targetsMet: { pullVsCurl: false, pullCpuSecondsPerGiB: false, peakRssMb: false },
  };
  // Issue 13's targets: as fast as curl, at most 1.5 client CPU s per GiB, under 150 MB.
  result.targetsMet = {
    pullVsCurl: result.pullVsCurl >= 1,
    pullCpuSecondsPerGiB: result.pullCpuSecondsPerGiB <= 1.5,
    peakRssMb: result.peakRssMb < 150,
  };
  const full = { ...result, machine: machineInfo() };
  if (!args['no-write']) writeBenchmarkSection('pull', renderMarkdown(full));
  if (json) process.stdout.write(`${JSON.stringify(full)}\n`);
  else {
    const tp = result.throughputMBps;
    log(`  throughput MB/s: push ${tp.push}, cp ${tp.cp}, pull ${tp.pull}, curl ${tp.curl}`);
    log(`     pushVsCp = ${result.pushVsCp}`);
    for (const [k, ok] of Object.entries(result.targetsMet)) {
      log(`${ok ? 'met ' : 'MISS'} ${k} = ${(result as unknown as Record<string, unknown>)[k]}`);
    }
  }
}

const round2 = (n: number) => Math.round(n * 100) / 100;
/** CPU seconds per GiB moved. */
const perGiB = (seconds: number, bytes: number) => round2(seconds / (bytes / 2 ** 30));

interface StageFigures {
  bigSeconds: number;
  envelopeSeconds: number;
  cpuSeconds: number;
  peakRssMb: number;
}

interface PullResult {
  bench: 'pull';
  backend: ReturnType<typeof backend>;
  sizeBytes: number;
  bigPartBytes: number;
  reps: number;
  seconds: Record<string, number[]>;
  throughputMBps: Record<string, number>;
  pullVsCurl: number;
  pushVsCp: number;
  peakRssMb: number;
  pushPeakRssMb: number;
  cpuSeconds: Record<
    'pullClient' | 'pullServer' | 'curlClient' | 'curlServer' | 'pushClient' | 'pushServer',
    number
  >;
  clientCpuSecondsPerGiB: Record<'pull' | 'curl' | 'push', number>;
  serverCpuSecondsPerGiB: Record<'pull' | 'curl' | 'push', number>;
  physicalLimit: PhysicalLimit;
  oneCore?: { pullSeconds: number; pullMBps: number; clientCpuSecondsPerGiB: number };
  pullPhasesSeconds: { envelope: number; bigPart: number; fsyncRename: number };
  profile?: Record<PullStage, StageFigures>;
  loadAverage: { before: number[]; after: number[] };
  targetsMet: Record<'pullVsCurl' | 'pullCpuSecondsPerGiB' | 'peakRssMb', boolean>;
  /** The pulling client's CPU seconds per GiB (clientCpuSecondsPerGiB.pull), a target figure. */
  pullCpuSecondsPerGiB: number;
}

function renderMarkdown(r: PullResult & { machine: { summary: string } }): string {
  const tp = r.throughputMBps;
  const s = r.seconds;
  const c = r.cpuSeconds;
  const ph = r.pullPhasesSeconds;
  const cg = r.clientCpuSecondsPerGiB;
  const sg = r.serverCpuSecondsPerGiB;
  const lim = r.physicalLimit;
  const row = (name: string, value: string, target: string, ok?: boolean) =>
    `| ${name} | ${value} | ${target} | ${ok === undefined ? '' : ok ? 'met' : '**missed**'} |`;
  const lines = [
    `## Pull (\`pnpm bench:pull --size ${formatBytes(r.sizeBytes)}${r.profile ? ' --profile' : ''}\`)`,
    '',
    `Run ${new Date().toISOString()} on ${r.machine.summary}. Medians of ${r.reps} repetitions;`,
    `load average (1, 5, 15 min) ${r.loadAverage.before.join(', ')} before and ${r.loadAverage.after.join(', ')} after`,
    '(the bench keeps up to about 2 runnable itself; beyond that, other work shared the 2 cores).',
    '',
    'The embedded default on one machine: the resource API (`createServer`, data directory on the',
    'same disk as the files) runs in the bench process on loopback; every client is a fresh Node',
    'process that logs in first (untimed). Each contender runs interleaved with its baseline,',
    'alternating which goes first. Page cache warm: the server reads the big part it has just stored.',
    '',
    '- **push**: `push` of the generated file: encrypt with a fresh data key,',
    '  split, chunk digests, one multipart upload (small part, big part, manifest, data key) streamed',
    '  from the temp files; the server streams the big part to disk, fsyncs it and checks every chunk',
    '  digest.',
    '  Baseline: `cp` of the same file, then fsync of the copy.',
    '- **pull**: `pull` to a file as the device user: device envelope (request, scrypt',
    '  KDF), the big part as 8 MiB ranged GETs, 8 in flight, each chunk checked against its manifest',
    '  digest, decrypted and written at its offset into a temp file, which is fsynced and renamed',
    '  into place. No local cache. Baseline: `curl -s -f -o FILE -H @headers URL` of the same big',
    `  part (one GET, ${r.bigPartBytes} bytes of ciphertext) from the same server, then fsync of the`,
    '  file. After every pull the plaintext SHA-256 is checked against the source (untimed).',
    '- **peakRssMb**: VmHWM of the client process (the largest of the runs), Node itself included.',
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
    row('pullVsCurl', String(r.pullVsCurl), '≥ 1.0', r.targetsMet.pullVsCurl),
    row(
      'client CPU s per GiB pulled',
      String(r.pullCpuSecondsPerGiB),
      '≤ 1.5',
      r.targetsMet.pullCpuSecondsPerGiB,
    ),
    row('pushVsCp', String(r.pushVsCp), '', undefined),
    row('peakRssMb (pulling process)', String(r.peakRssMb), '< 150', r.targetsMet.peakRssMb),
    row('peak RSS of the pushing process (MB)', String(r.pushPeakRssMb), '', undefined),
    '',
    'Where a pull spends its time (medians, seconds): envelope = start to first progress event',
    '(envelope request, scrypt KDF, small part); big part = first to last progress event (ranged',
    'GETs, verify, decrypt, pwrite); fsync + rename = last progress event to return. CPU seconds:',
    'all threads of the client process (curl: from bash `times`), and the bench process (the',
    'server) during each operation.',
    '',
    '| pull phase | seconds |',
    '|---|---:|',
    `| envelope | ${ph.envelope} |`,
    `| big part | ${ph.bigPart} |`,
    `| fsync + rename | ${ph.fsyncRename} |`,
    '',
    '| CPU seconds | client | server | client per GiB | server per GiB |',
    '|---|---:|---:|---:|---:|',
    `| pull | ${c.pullClient} | ${c.pullServer} | ${cg.pull} | ${sg.pull} |`,
    `| curl | ${c.curlClient} | ${c.curlServer} | ${cg.curl} | ${sg.curl} |`,
    `| push | ${c.pushClient} | ${c.pushServer} | ${cg.push} | ${sg.push} |`,
    '',
    `Physical limit of this machine (one thread each, in memory): AES-256-CBC decryption ${lim.aesDecryptMBps} MB/s,`,
    `SHA-256 ${lim.sha256MBps} MB/s, loopback (send and receive into one reused buffer) ${lim.loopbackMBps} MB/s:`,
    `a pull of ${formatBytes(r.sizeBytes)} needs at least ${lim.bestSeconds} s on ${lim.cores} cores`,
    `(${lim.bestSecondsOneCore} s on one), against the ${r.seconds.pull?.length ? median(r.seconds.pull).toFixed(2) : '?'} s measured.`,
    '',
    ...(r.oneCore === undefined
      ? []
      : [
          `Client pinned to one core (\`taskset -c 0\`, \`--one-core\`): pull ${r.oneCore.pullSeconds} s,`,
          `${r.oneCore.pullMBps} MB/s, ${r.oneCore.clientCpuSecondsPerGiB} client CPU s per GiB.`,
          '',
        ]),
  ];
  if (r.profile) {
    const p = r.profile;
    const mb = (sec: number) => Math.round(r.bigPartBytes / sec / 1e6);
    const stageRow = (st: PullStage) =>
      `| ${STAGE_LABEL[st]} | ${p[st].bigSeconds} | ${mb(p[st].bigSeconds)} | ${p[st].cpuSeconds} | ${p[st].peakRssMb} |`;
    lines.push(
      "`--profile`: the big part through the pull's own range driver (`apiRangeDriver`: 8 MiB",
      'ranges read into one reused buffer per worker, 4 in flight) in fresh processes, doing',
      "more of the pull's per-chunk work each time; the full pull adds pwrite, fsync and rename.",
      'Big-part seconds exclude the envelope; CPU seconds and peak RSS include it.',
      '',
      '| per-chunk work | big part s | MB/s | client CPU s | peak RSS MB |',
      '|---|---:|---:|---:|---:|',
      ...(['transport', 'verify', 'decrypt'] as const).map(stageRow),
      `| full pull (+ pwrite; then fsync + rename) | ${ph.bigPart} (+ ${ph.fsyncRename}) | ${mb(ph.bigPart + ph.fsyncRename)} | ${c.pullClient} | ${r.peakRssMb} |`,
      '',
    );
  }
  return lines.join('\n');
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
