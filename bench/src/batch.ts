// pnpm bench:batch [--count 200] [--size 4MiB] [--reps 1] [--json] [--no-s3] [--quick]
//                  [--dir DIR] [--no-write] [--concurrency N] [--profile]
// pnpm bench:batch --render FILE [--out PATH]   (the section from an earlier run's --json output)
// Hundreds of resources at once, on the embedded default and on a throwaway Ceph RGW
// (scripts/ceph/ceph.mjs, started in the bench's temp dir and stopped at the end, on failure and
// on SIGINT/SIGTERM). Each store gets `count` pseudo-models of `size` bytes; then, each in a fresh
// client process, the same device loads them all: with a plain loop of pull
// (one after the other) and with one pullMany, interleaved over --reps (batchVsSequential ≥ 5);
// then into a cache and once more from it, against a native decryptFile (as bench:crypto
// measures it) of one file as large as the whole batch, timed just before
// (cachedBatchVsDecrypt ≥ 0.8). Every loaded file's SHA-256 is checked. CPU seconds of the
// client, the API (this process), radosgw and the OSD show where the time goes. Writes the
// `## Batch` section of docs/BENCHMARKS.md. --quick: 24 resources of 1 MiB, nothing written.
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { backend, cryptoBackend, deriveEnvelopeKey } from '@sluice/core';
import { stopCeph } from '../../scripts/ceph/ceph.mjs';
import type { BatchChildJob, BatchChildResult } from './batchChild.js';
import {
  type BatchStore,
  DEVICE,
  FOLDER,
  HARDWARE,
  startBatchStore,
  startBenchCeph,
} from './batchStores.js';
import { jsonChild, sha256Of, writePseudoModel } from './benchFiles.js';
import { machineInfo, writeBenchmarkSection } from './report.js';
import { type Args, formatBytes, median, parseArgs, parseSize, timeIt } from './util.js';

const log = (msg: string) => process.stderr.write(`${msg}\n`);
const round2 = (n: number) => Math.round(n * 100) / 100;
const mbps = (bytes: number, s: number) => Math.round(bytes / s / 1e6);
const TARGETS = {
  batchVsSequential: { op: '≥' as const, value: 5 },
  cachedBatchVsDecrypt: { op: '≥' as const, value: 0.8 },
};

/** CPU seconds of each side during one run. */
interface CpuSplit {
  client: number;
  api: number;
  rgw?: number;
  osd?: number;
}

interface Run {
  seconds: number;
  mbPerSec: number;
  cpu: CpuSplit;
  peakRssMb: number;
  firstProgressSeconds?: number;
}

interface StoreResult {
  sequential: Run;
  pullMany: Run;
  cacheFill: Run;
  cached: Run;
  /** Native decryptFile of one batch-sized file, timed just before the cached batch. */
  decryptMbPerSec: number;
  limits: BatchChildResult['limits'];
  batchVsSequential: number;
  cachedBatchVsDecrypt: number;
  /** With --profile: the client's top functions by self time in the cached batch. */
  profile?: ProfileLine[];
  targetsMet: Record<keyof typeof TARGETS, boolean>;
}

interface ProfileLine {
  fn: string;
  ms: number;
}

/** Self time per function of a V8 .cpuprofile, the `top` largest (idle and program left out). */
function topSelfTime(path: string, top: number): ProfileLine[] {
  const p = JSON.parse(readFileSync(path, 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const f = byId.get(id);
    if (f === undefined || f.functionName === '(idle)' || f.functionName === '(program)') return;
    const where =
      f.url === '' ? '' : ` ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`;
    const key = `${f.functionName || '(anonymous)'}${where}`;
    self.set(key, (self.get(key) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000);
  });
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, ms]) => ({ fn, ms: Math.round(ms) }));
}

/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat. */
function processCpu(pid: number, ticks: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

async function main(args: Args): Promise<void> {
  if (typeof args.render === 'string') {
    const saved = JSON.parse(readFileSync(args.render, 'utf8').trim().split('\n').at(-1) ?? '');
    if (saved.bench !== 'batch') throw new Error(`${args.render} holds no bench:batch result`);
    const out = typeof args.out === 'string' ? { path: args.out } : {};
    writeBenchmarkSection('batch', renderMarkdown(saved as Full), out);
    return;
  }
  const quick = Boolean(args.quick);
  const count = Number(args.count ?? (quick ? 24 : 200));
  const size = parseSize(String(args.size ?? (quick ? '1MiB' : '4MiB')));
  const reps = Number(args.reps ?? 1);
  for (const [n, what] of [
    [count, '--count'],
    [reps, '--reps'],
  ] as const) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer`);
  }
  const concurrency = args.concurrency === undefined ? undefined : Number(args.concurrency);
  const json = Boolean(args.json);
  const write = !args['no-write'] && !quick;
  const withS3 = !args['no-s3'];
  const chosen = backend();
  if (chosen.kind !== 'native') {
    throw new Error(`the native backend is not available (${chosen.reason}); run pnpm build first`);
  }
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

  const dir = mkdtempSync(join(String(args.dir ?? tmpdir()), 'sluice-bench-batch-'));
  const cephDir = join(dir, 'ceph');
  const children = new Set<ChildProcess>();
  let store: BatchStore | undefined;
  let cephStarted = false;
  let cleaning: Promise<void> | undefined;
  const cleanup = () => {
    cleaning ??= (async () => {
      for (const c of children) c.kill('SIGKILL');
      await store?.server.close().catch(() => {});
      if (cephStarted) {
        await stopCeph(cephDir).catch((e: unknown) => log(`stopping Ceph failed: ${String(e)}`));
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return cleaning;
  };
  const onSignal = (sig: NodeJS.Signals) => {
    log(`bench:batch: ${sig}, stopping and removing ${dir}`);
    process.exitCode = 130;
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const loadBefore = loadavg();
    log(
      `sluice bench:batch — ${count} × ${formatBytes(size)}, ${reps} rep(s), in ${dir} (load ${loadBefore.map((l) => l.toFixed(1)).join(' ')})`,
    );
    const t0 = process.hrtime.bigint();
    await deriveEnvelopeKey('warm@bench.invalid', 'x', 'y');
    const scryptMs = round2(
      (await timeIt(() => deriveEnvelopeKey('a@bench.invalid', 'pw', 'hw'))) * 1000,
    );
    log(`one envelope key derivation (scrypt N=2^15, r=8): ${scryptMs} ms`);

    // The decrypt reference: one sealed file as large as the whole batch.
    const native = cryptoBackend('native');
    const total = count * size;
    const key = randomBytes(32);
    const iv = randomBytes(16);
    const cipher = join(dir, 'reference.sealed');
    const plain = join(dir, 'reference.bin');
    await writePseudoModel(plain, total);
    await native.encryptFile(plain, cipher, key, iv);
    await rm(plain);
    const decryptReference = async (): Promise<number> => {
      const s = await timeIt(() => native.decryptFile(cipher, plain, key, iv, { threads: 2 }));
      await rm(plain);
      return mbps(total, s);
    };

    const ticks = clockTicks();
    const results: Partial<Record<'embedded' | 's3', StoreResult>> = {};
    const kinds: ('embedded' | 's3')[] = withS3 ? ['embedded', 's3'] : ['embedded'];
    for (const kind of kinds) {
      let cluster: Awaited<ReturnType<typeof startBenchCeph>> | undefined;
      if (kind === 's3') {
        log('starting Ceph (mon, OSD, radosgw)…');
        cephStarted = true;
        cluster = await startBenchCeph(cephDir);
      }
      log(`${kind}: pushing ${count} resources…`);
      store = await startBatchStore(join(dir, `data-${kind}`), count, size, cluster, log);
      const s = store;
      const outDir = join(dir, 'out');
      const cacheDir = join(dir, `cache-${kind}`);
      const names = [...s.shas.keys()];
      let limits: BatchChildResult['limits'];
      const run = async (
        mode: BatchChildJob['mode'],
        cache: boolean,
        profileFile?: string,
      ): Promise<Run> => {
        await rm(outDir, { recursive: true, force: true });
        await mkdir(outDir);
        const rgw0 = s.pids ? processCpu(s.pids.rgw, ticks) : 0;
        const osd0 = s.pids ? processCpu(s.pids.osd, ticks) : 0;
        const c0 = process.cpuUsage();
        const r = await jsonChild<BatchChildResult>(
          './batchChild.js',
          {
            mode,
            apiUrl: s.server.url,
            email: DEVICE,
            password: s.server.password,
            hardware: HARDWARE,
            folder: FOLDER,
            names,
            outDir,
            ...(cache ? { cacheDir } : {}),
            ...(concurrency === undefined ? {} : { concurrency }),
            ...(profileFile === undefined ? {} : { profileFile }),
          } satisfies BatchChildJob,
          children,
        );
        const c = process.cpuUsage(c0);
        const cpu: CpuSplit = {
          client: round2(r.cpuSeconds),
          api: round2((c.user + c.system) / 1e6),
        };
        if (s.pids) {
          cpu.rgw = round2(processCpu(s.pids.rgw, ticks) - rgw0);
          cpu.osd = round2(processCpu(s.pids.osd, ticks) - osd0);
        }
        if (r.ok !== count) {
          throw new Error(
            `${mode}: ${count - r.ok} of ${count} failed: ${r.failures.slice(0, 3).join('; ')}`,
          );
        }
        await verify(outDir, s.shas);
        const out: Run = {
          seconds: round2(r.seconds),
          mbPerSec: mbps(r.bytes, r.seconds),
          cpu,
          peakRssMb: Math.round(r.peakRssMb),
          ...(r.firstProgressSeconds === undefined
            ? {}
            : { firstProgressSeconds: round2(r.firstProgressSeconds) }),
        };
        log(
          `  ${`${mode}${cache ? ' (cache)' : ''}`.padEnd(20)} ${String(out.seconds).padStart(7)} s ${String(out.mbPerSec).padStart(5)} MB/s  CPU client ${cpu.client} s, API ${cpu.api} s${cpu.rgw === undefined ? '' : `, rgw ${cpu.rgw} s, OSD ${cpu.osd} s`}; peak RSS ${out.peakRssMb} MB${r.fromCache ? `; ${r.fromCache} from cache` : ''}`,
        );
        if (cache && r.fromCache !== 0 && r.fromCache !== count) {
          throw new Error(`${r.fromCache} of ${count} came from the cache, expected all or none`);
        }
        limits ??= r.limits;
        return out;
      };

      const seq: Run[] = [];
      const many: Run[] = [];
      for (let i = 0; i < reps; i++) {
        const order: BatchChildJob['mode'][] =
          i % 2 ? ['pullMany', 'sequential'] : ['sequential', 'pullMany'];
        for (const mode of order) (mode === 'sequential' ? seq : many).push(await run(mode, false));
      }
      const cacheFill = await run('pullMany', true);
      const decryptMbPerSec = await decryptReference();
      log(`  native decryptFile of ${formatBytes(total)}: ${decryptMbPerSec} MB/s`);
      const profileFile = args.profile ? join(dir, `cached-${kind}.cpuprofile`) : undefined;
      const cached = await run('pullMany', true, profileFile);
      let profile: ProfileLine[] | undefined;
      if (profileFile !== undefined) {
        profile = topSelfTime(profileFile, 8);
        log('  client self time in the cached batch (V8 profile):');
        for (const l of profile) log(`    ${String(l.ms).padStart(6)} ms  ${l.fn}`);
      }
      await rm(outDir, { recursive: true, force: true });
      await rm(cacheDir, { recursive: true, force: true });
      const pick = (runs: Run[]) => {
        const m = median(runs.map((r) => r.seconds));
        return runs.find((r) => r.seconds === m) ?? (runs[0] as Run);
      };
      const sequential = pick(seq);
      const pullMany = pick(many);
      const batchVsSequential = round2(
        median(seq.map((r) => r.seconds)) / median(many.map((r) => r.seconds)),
      );
      const cachedBatchVsDecrypt = Math.round((cached.mbPerSec / decryptMbPerSec) * 1000) / 1000;
      results[kind] = {
        sequential,
        pullMany,
        cacheFill,
        cached,
        decryptMbPerSec,
        ...(profile ? { profile } : {}),
        limits,
        batchVsSequential,
        cachedBatchVsDecrypt,
        targetsMet: {
          batchVsSequential: batchVsSequential >= TARGETS.batchVsSequential.value,
          cachedBatchVsDecrypt: cachedBatchVsDecrypt >= TARGETS.cachedBatchVsDecrypt.value,
        },
      };
      log(`  batchVsSequential ${batchVsSequential}, cachedBatchVsDecrypt ${cachedBatchVsDecrypt}`);
      await s.server.close();
      store = undefined;
      if (kind === 's3') {
        await stopCeph(cephDir);
        cephStarted = false;
      }
    }
    const loadAfter = loadavg();
    const full = {
      bench: 'batch',
      count,
      sizeBytes: size,
      reps,
      backend: chosen,
      scryptMs,
      seconds: round2(Number(process.hrtime.bigint() - t0) / 1e9),
      ...results,
      targets: TARGETS,
      machine: machineInfo(),
      load: { before: loadBefore.map(round2), after: loadAfter.map(round2) },
    };
    if (write) writeBenchmarkSection('batch', renderMarkdown(full));
    if (json) process.stdout.write(`${JSON.stringify(full)}\n`);
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Every file in `dir` has the SHA-256 its resource was pushed with, and none is missing. */
async function verify(dir: string, shas: Map<string, string>): Promise<void> {
  const found = (await readdir(dir)).sort();
  const expected = [...shas.keys()].sort();
  if (found.join() !== expected.join()) {
    throw new Error(`expected ${expected.length} files in ${dir}, found ${found.length}`);
  }
  for (const [name, sha] of shas) {
    const got = await sha256Of(join(dir, name));
    if (got !== sha) throw new Error(`${name}: SHA-256 ${got} differs from the pushed ${sha}`);
  }
}

type Full = {
  count: number;
  sizeBytes: number;
  scryptMs: number;
  seconds: number;
  embedded?: StoreResult;
  s3?: StoreResult;
  machine: ReturnType<typeof machineInfo>;
  load: { before: number[]; after: number[] };
};

function renderMarkdown(r: Full): string {
  const cores = r.machine.cores;
  const busy = Math.max(...r.load.before, ...r.load.after) > cores;
  const stores = (['embedded', 's3'] as const).filter((k) => r[k] !== undefined);
  const label = { embedded: 'embedded default', s3: 'Ceph RGW (S3 CDN)' };
  const profiled = stores.some((k) => r[k]?.profile !== undefined);
  const lines = [
    `## Batch (\`pnpm bench:batch${profiled ? ' --profile' : ''}\`)`,
    '',
    `${r.count} resources of ${formatBytes(r.sizeBytes)}, one device, each run in a fresh client process; the API in the bench's process on loopback. ${r.machine.summary}. Load average ${r.load.before.join(' / ')} at the start, ${r.load.after.join(' / ')} at the end${busy ? ` (**measured under load**: more runnable processes than the ${cores} cores)` : ''}; ${Math.round(r.seconds)} s in all.${profiled ? ' The cached batch ran under the V8 sampling profiler, which slows it somewhat.' : ''}`,
    '',
    '| store | sequential loop | pullMany | batchVsSequential (≥ 5) | cached pullMany | native decryptFile | cachedBatchVsDecrypt (≥ 0.8) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const k of stores) {
    const s = r[k] as StoreResult;
    lines.push(
      `| ${label[k]} | ${s.sequential.seconds} s, ${s.sequential.mbPerSec} MB/s | ${s.pullMany.seconds} s, ${s.pullMany.mbPerSec} MB/s | ${s.batchVsSequential} ${s.targetsMet.batchVsSequential ? '' : '(**missed**)'} | ${s.cached.seconds} s, ${s.cached.mbPerSec} MB/s | ${s.decryptMbPerSec} MB/s | ${s.cachedBatchVsDecrypt} ${s.targetsMet.cachedBatchVsDecrypt ? '' : '(**missed**)'} |`,
    );
  }
  lines.push(
    '',
    'Where the time goes: CPU seconds of each side during each run (client = the loading process; API = the resource API; rgw and OSD = Ceph).',
    '',
    '| store | run | wall s | client CPU s | API CPU s | rgw CPU s | OSD CPU s | peak RSS MB |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const k of stores) {
    const s = r[k] as StoreResult;
    for (const [name, run] of [
      ['sequential loop', s.sequential],
      ['pullMany', s.pullMany],
      ['pullMany filling the cache', s.cacheFill],
      ['pullMany from the cache', s.cached],
    ] as const) {
      lines.push(
        `| ${label[k]} | ${name} | ${run.seconds} | ${run.cpu.client} | ${run.cpu.api} | ${run.cpu.rgw ?? ''} | ${run.cpu.osd ?? ''} | ${run.peakRssMb} |`,
      );
    }
  }
  const ms = (seconds: number) => Math.round((seconds / r.count) * 1000);
  const cpuOf = (run: Run) =>
    run.cpu.client + run.cpu.api + (run.cpu.rgw ?? 0) + (run.cpu.osd ?? 0);
  lines.push(
    '',
    `One envelope key derivation (scrypt N = 2^15, r = 8, 32 MiB) takes ${r.scryptMs} ms on this machine at this load.`,
  );
  for (const k of stores) {
    const s = r[k] as StoreResult;
    const seq = s.sequential;
    const many = s.pullMany;
    const bound = round2(cpuOf(many) / cores);
    lines.push(
      '',
      `**${label[k]}.** The sequential loop takes ${ms(seq.seconds)} ms per resource with ${ms(seq.cpu.client)} ms of client CPU: pull derives the envelope key for every resource${k === 's3' ? ', and fetches the CDN config (another envelope, another scrypt on both sides) and builds an S3 client for each' : ''}, and nothing overlaps; the API spends ${ms(seq.cpu.api)} ms of CPU per resource${k === 's3' ? ' (mostly the scrypt of the CDN-config envelope)' : ''}. pullMany derives the key once per batch${k === 's3' ? ' and fetches the CDN config once' : ''}, and overlaps envelopes, transfers and decryption within its limits (${s.limits?.concurrency} resources, ${s.limits?.apiConcurrency} API requests, ${s.limits?.cdnConcurrency} big-part connections): ${ms(many.seconds)} ms per resource, the API ${ms(many.cpu.api)} ms of CPU each. Its CPU over every process, ${round2(cpuOf(many))} s, bounds it at ${bound} s on ${cores} cores against ${many.seconds} s measured${many.seconds > 1.5 * bound ? ': the rest is waiting for cores held by the other processes on this machine' : ': it is CPU-bound'}.`,
      '',
      `From the cache (${s.cached.seconds} s, ${ms(s.cached.seconds)} ms per resource, ${ms(s.cached.cpu.client)} ms of client CPU and ${ms(s.cached.cpu.api)} ms of API CPU each) no big part is requested: per resource an envelope round trip carrying the small part (up to 1 MiB, base64 in JSON), the shared cache's entry files, SHA-256 of every chunk, the decryption, and the output written, fsynced and renamed; the native decryptFile reference reads one file and fsyncs one output (${s.decryptMbPerSec} MB/s).`,
    );
    if (s.profile) {
      const regexFirst = s.profile[0]?.fn.startsWith('RegExp: ^(?:[A-Za-z0-9+/]{4})*') === true;
      lines.push(
        '',
        `${regexFirst ? "The client's largest cost is not the decryption but openEnvelope's regular-expression check of each base64 field (base64Field in packages/core/src/format/envelope.ts), run over the small part in every envelope (up to 1 MiB); a canonical decode-and-re-encode check does the same in linear native code. " : ''}Client self time in the cached batch (V8 sampling profiler, \`--profile\`; ms of samples, which under load include time spent waiting for a core): ${s.profile.map((l) => `\`${l.fn.replaceAll('`', "'")}\` ${l.ms} ms`).join('; ')}.`,
      );
    }
  }
  return lines.join('\n');
}

main(parseArgs(process.argv.slice(2))).catch((e: unknown) => {
  log(`bench:batch failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exitCode = 1;
});
