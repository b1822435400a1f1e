// pnpm bench:pull --s3 [--size 2GiB] [--reps 3] [--json] [--dir DIR] [--no-write]
// The product with its big parts on an S3 CDN, end to end on one machine: a throwaway Ceph RGW
// (scripts/ceph/ceph.mjs) in the bench's temp dir, the resource API in this process on loopback
// with S3 part storage and an S3 CDN (read keys for devices, write keys for uploaders), one
// generated file. Push (a fresh client process) vs a plain lib-storage `Upload` of the plaintext;
// pull (a fresh client process) vs a plain single-stream `GetObject` of the same big part into a
// file + fsync. Medians of --reps, each contender interleaved with its baseline; the pulled
// plaintext's SHA-256 is checked after every pull. CPU seconds of the client, the API server
// (this process), radosgw and the OSD per operation show where the time goes. Writes the
// `## Pull from S3` section of docs/BENCHMARKS.md. Ceph is stopped and the temp dir removed at
// the end, on failure and on SIGINT/SIGTERM.

import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { S3Objects } from '@sluice/cdn';
import { backend, blobSize, DEFAULT_SMALL_SIZE_KB, smallPartSize } from '@sluice/core';
import { type CephCluster, startCeph, stopCeph } from '../../scripts/ceph/ceph.mjs';
import { jsonChild, sha256Of, writePseudoModel } from './benchFiles.js';
import type { PullChildJob, PullChildResult } from './pullChild.js';
import type { PullS3ChildJob, PullS3ChildResult, S3Target } from './pullS3Child.js';
import { type PullServer, startPullServer } from './pullServer.js';
import { machineInfo, writeBenchmarkSection } from './report.js';
import { type Args, formatBytes, median, parseSize } from './util.js';

const FOLDER = 'models';
const NAME = 'model.bin';
const UPLOADER = 'uploader@bench.invalid';
const DEVICE = 'device@bench.invalid';
const CDN_BUCKET = 'sluice-bench-cdn';
const STORE_BUCKET = 'sluice-bench-store';
const CDN_PREFIX = 'models-cdn';
const BASELINE_KEY = 'baseline/plain-upload.bin';
// Fixed stand-ins for the two devices' hardware hashes: the first use binds, later ones match.
const HARDWARE = createHash('sha256').update('sluice bench:pull --s3 device').digest('hex');
const UPLOADER_HARDWARE = createHash('sha256')
  .update('sluice bench:pull --s3 uploader')
  .digest('hex');

const log = (msg: string) => process.stderr.write(`${msg}\n`);
const fmt = (xs: number[]) => xs.map((t) => t.toFixed(2)).join(' ');
const round2 = (n: number) => Math.round(n * 100) / 100;
const med = (xs: number[]) => round2(median(xs));

/** CPU seconds (user + system) a process has used so far, from /proc/PID/stat. */
function processCpu(pid: number, ticksPerSecond: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** CPU seconds of each side during one operation. */
interface CpuSplit {
  client: number;
  server: number;
  rgw: number;
  osd: number;
}

interface Series {
  seconds: number[];
  rssMb: number[];
  cpu: CpuSplit[];
}
const series = (): Series => ({ seconds: [], rssMb: [], cpu: [] });

/** Runs the whole bench; sets process.exitCode on failure. */
export async function pullS3(args: Args): Promise<void> {
  const size = parseSize(String(args.size ?? '2GiB'));
  const reps = Number(args.reps ?? 3);
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a positive integer`);
  const json = Boolean(args.json);
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

  const dir = mkdtempSync(join(String(args.dir ?? tmpdir()), 'sluice-bench-pull-s3-'));
  const paths = {
    src: join(dir, 'model.bin'),
    pulled: join(dir, 'pulled.bin'),
    getObject: join(dir, 'get-object.bin'),
    uploadTmp: join(dir, 'upload-tmp'),
    data: join(dir, 'data'),
    ceph: join(dir, 'ceph'),
  };
  const children = new Set<ChildProcess>();
  let server: PullServer | undefined;
  let admin: S3Client | undefined;
  let cluster: CephCluster | undefined;
  let cleaning: Promise<void> | undefined;
  // Children first, then the API server, then Ceph (only the pids it recorded), then the files.
  const cleanup = () => {
    cleaning ??= (async () => {
      for (const c of children) c.kill('SIGKILL');
      await server?.close().catch(() => {});
      admin?.destroy();
      await stopCeph(paths.ceph).catch((e: unknown) => log(`stopping Ceph failed: ${String(e)}`));
      rmSync(dir, { recursive: true, force: true });
    })();
    return cleaning;
  };
  const onSignal = (sig: NodeJS.Signals) => {
    log(`bench:pull --s3: ${sig}, stopping Ceph and removing ${dir}`);
    process.exitCode = 130;
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const chosen = backend();
    log(
      `sluice bench:pull --s3 — ${formatBytes(size)}, ${reps} reps, in ${dir} (crypto backend: ${chosen.kind})`,
    );
    const loadBefore = loadavg();
    log('generating the pseudo-model…');
    const srcSha = await writePseudoModel(paths.src, size);
    await mkdir(paths.uploadTmp);
    const bigSize = blobSize(size) - smallPartSize(blobSize(size), DEFAULT_SMALL_SIZE_KB);

    log('starting Ceph (mon, OSD, radosgw)…');
    const tCeph = process.hrtime.bigint();
    cluster = await startCeph({ dir: paths.ceph });
    log(
      `  up in ${(Number(process.hrtime.bigint() - tCeph) / 1e9).toFixed(1)} s at ${cluster.endpoint}`,
    );
    const { rgw: rgwPid, osd: osdPid } = cluster.pids;
    if (rgwPid === undefined || osdPid === undefined)
      throw new Error('Ceph recorded no rgw/osd pid');
    const rw = { accessKeyId: cluster.accessKeyId, secretAccessKey: cluster.secretAccessKey };
    const read = {
      accessKeyId: cluster.readAccessKeyId,
      secretAccessKey: cluster.readSecretAccessKey,
    };
    const { endpoint, region } = cluster;
    const cdnObjects = new S3Objects({ endpoint, region, bucket: CDN_BUCKET, uploader: rw });
    await cdnObjects.ensureBucket();
    cdnObjects.destroy();
    admin = new S3Client({
      endpoint,
      region,
      credentials: rw,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const s3 = admin;

    server = await startPullServer(paths.data, {
      storage: { kind: 's3', endpoint, region, bucket: STORE_BUCKET, credentials: rw },
      cdn: {
        kind: 's3',
        endpoint,
        region,
        bucket: CDN_BUCKET,
        prefix: CDN_PREFIX,
        downloader: read,
        uploader: rw,
      },
    });
    const api = server;
    await api.createUser(UPLOADER, 'ResourceUploader');
    await api.createUser(DEVICE, 'Operator');
    const login = { apiUrl: api.url, password: api.password, name: NAME, folder: FOLDER };
    const target = (credentials: S3Target['credentials']): S3Target => ({
      endpoint,
      region,
      bucket: CDN_BUCKET,
      credentials,
    });

    const ticks = clockTicks();
    /** Runs `fn` (one child process) and splits the CPU it caused by side. */
    const measured = async <T extends { cpuSeconds: number }>(
      fn: () => Promise<T>,
    ): Promise<{ r: T; cpu: CpuSplit }> => {
      const rgw0 = processCpu(rgwPid, ticks);
      const osd0 = processCpu(osdPid, ticks);
      const c0 = process.cpuUsage();
      const r = await fn();
      const c = process.cpuUsage(c0);
      return {
        r,
        cpu: {
          client: r.cpuSeconds,
          server: (c.user + c.system) / 1e6,
          rgw: processCpu(rgwPid, ticks) - rgw0,
          osd: processCpu(osdPid, ticks) - osd0,
        },
      };
    };
    const record = (s: Series, m: { r: { seconds: number; peakRssMb: number }; cpu: CpuSplit }) => {
      s.seconds.push(m.r.seconds);
      s.rssMb.push(m.r.peakRssMb);
      s.cpu.push(m.cpu);
    };
    const client = (job: PullChildJob) =>
      measured(() => jsonChild<PullChildResult>('./pullChild.js', job, children));
    const sdk = (job: PullS3ChildJob) =>
      measured(() => jsonChild<PullS3ChildResult>('./pullS3Child.js', job, children));

    log('push (fresh client process) vs lib-storage Upload of the plaintext, interleaved:');
    const push = series();
    const pushPhases = { first: [] as number[], last: [] as number[] };
    const upload = series();
    for (let i = 0; i < reps; i++) {
      // One version at a time: deleting the resource also deletes its big part on the CDN.
      await api.deleteResource(FOLDER, NAME);
      await s3.send(new DeleteObjectCommand({ Bucket: CDN_BUCKET, Key: BASELINE_KEY }));
      const contenders = [
        async () => {
          const m = await client({
            ...login,
            op: 'push',
            email: UPLOADER,
            src: paths.src,
            tempDir: paths.uploadTmp,
            hardware: UPLOADER_HARDWARE,
          });
          record(push, m);
          pushPhases.first.push(m.r.firstProgressSeconds ?? m.r.seconds);
          pushPhases.last.push(m.r.lastProgressSeconds ?? m.r.seconds);
        },
        async () => {
          const m = await sdk({ ...target(rw), op: 'upload', key: BASELINE_KEY, src: paths.src });
          if (m.r.bytes !== size) throw new Error(`Upload read ${m.r.bytes} of ${size} bytes`);
          record(upload, m);
        },
      ];
      if (i % 2 === 1) contenders.reverse();
      for (const c of contenders) await c();
    }
    await s3.send(new DeleteObjectCommand({ Bucket: CDN_BUCKET, Key: BASELINE_KEY }));
    log(`  push          ${fmt(push.seconds)} s  (peak RSS ${fmt(push.rssMb)} MB)`);
    log(`  Upload        ${fmt(upload.seconds)} s`);

    // The big part of the last push: the only object under the resource's CDN prefix.
    const listed = await s3.send(
      new ListObjectsV2Command({ Bucket: CDN_BUCKET, Prefix: `${CDN_PREFIX}/${FOLDER}/${NAME}/` }),
    );
    const objects = listed.Contents ?? [];
    const bigKey = objects[0]?.Key;
    if (objects.length !== 1 || bigKey === undefined) {
      throw new Error(`expected one big part on the CDN, found ${objects.length}`);
    }
    if (objects[0]?.Size !== bigSize) {
      throw new Error(`the big part on the CDN is ${objects[0]?.Size} bytes, not ${bigSize}`);
    }

    log('pull (fresh client process) vs GetObject + fsync of the big part, interleaved:');
    const pull = series();
    const phases = { first: [] as number[], tail: [] as number[] };
    const getObject = series();
    for (let i = 0; i < reps; i++) {
      await rm(paths.pulled, { force: true });
      await rm(paths.getObject, { force: true });
      const contenders = [
        async () => {
          const m = await client({
            ...login,
            op: 'pull',
            email: DEVICE,
            to: paths.pulled,
            hardware: HARDWARE,
          });
          if (m.r.size !== size) throw new Error(`pulled ${m.r.size} bytes, expected ${size}`);
          record(pull, m);
          phases.first.push(m.r.firstProgressSeconds ?? 0);
          phases.tail.push(m.r.seconds - (m.r.lastProgressSeconds ?? m.r.seconds));
        },
        async () => {
          const m = await sdk({
            ...target(read),
            op: 'getObject',
            key: bigKey,
            to: paths.getObject,
          });
          if (m.r.bytes !== bigSize)
            throw new Error(`GetObject wrote ${m.r.bytes} of ${bigSize} bytes`);
          record(getObject, m);
        },
      ];
      if (i % 2 === 1) contenders.reverse();
      for (const c of contenders) await c();
      const sha = await sha256Of(paths.pulled);
      if (sha !== srcSha)
        throw new Error(`pulled SHA-256 ${sha} differs from the source's ${srcSha}`);
      if ((await stat(paths.pulled)).size !== size)
        throw new Error('pulled file has the wrong size');
    }
    await rm(paths.pulled, { force: true });
    await rm(paths.getObject, { force: true });
    log(`  pull          ${fmt(pull.seconds)} s  (peak RSS ${fmt(pull.rssMb)} MB)`);
    log(`  GetObject     ${fmt(getObject.seconds)} s`);
    log(`  pulled SHA-256 matched the source in all ${reps} runs`);
    const loadAfter = loadavg();

    const mbps = (bytes: number, s: number) => Math.round(bytes / s / 1e6);
    const ratio = (a: number, b: number) => round2(a / b);
    const t = {
      push: median(push.seconds),
      upload: median(upload.seconds),
      pull: median(pull.seconds),
      getObject: median(getObject.seconds),
    };
    const cpuMedians = (s: Series): CpuSplit => ({
      client: med(s.cpu.map((c) => c.client)),
      server: med(s.cpu.map((c) => c.server)),
      rgw: med(s.cpu.map((c) => c.rgw)),
      osd: med(s.cpu.map((c) => c.osd)),
    });
    const result: PullS3Result = {
      bench: 'pull-s3',
      sizeBytes: size,
      bigPartBytes: bigSize,
      reps,
      backend: chosen,
      seconds: {
        push: push.seconds,
        upload: upload.seconds,
        pull: pull.seconds,
        getObject: getObject.seconds,
      },
      throughputMBps: {
        push: mbps(size, t.push),
        upload: mbps(size, t.upload),
        pull: mbps(size, t.pull),
        getObject: mbps(bigSize, t.getObject),
      },
      // Throughput over throughput: the pull writes `size` plaintext bytes, GetObject `bigSize`.
      pullVsGetObject: ratio(size / t.pull, bigSize / t.getObject),
      pushVsUpload: ratio(t.upload, t.push),
      peakRssMb: Math.round(Math.max(...pull.rssMb)),
      pushPeakRssMb: Math.round(Math.max(...push.rssMb)),
      baselinePeakRssMb: {
        getObject: Math.round(Math.max(...getObject.rssMb)),
        upload: Math.round(Math.max(...upload.rssMb)),
      },
      cpuSeconds: {
        pull: cpuMedians(pull),
        getObject: cpuMedians(getObject),
        push: cpuMedians(push),
        upload: cpuMedians(upload),
      },
      pushPhasesSeconds: {
        firstPart: med(pushPhases.first),
        upload: med(pushPhases.last.map((l, i) => l - (pushPhases.first[i] ?? 0))),
        register: med(push.seconds.map((sec, i) => sec - (pushPhases.last[i] ?? sec))),
      },
      pullPhasesSeconds: {
        envelope: med(phases.first),
        bigPart: med(
          pull.seconds.map((s, i) => s - (phases.first[i] ?? 0) - (phases.tail[i] ?? 0)),
        ),
        fsyncRename: med(phases.tail),
      },
      loadAverage: { before: loadBefore.map(round2), after: loadAfter.map(round2) },
      targetsMet: { pullVsGetObject: false, pushVsUpload: false, peakRssMb: false },
    };
    result.targetsMet = {
      pullVsGetObject: result.pullVsGetObject >= 1.2,
      pushVsUpload: result.pushVsUpload >= 0.9,
      peakRssMb: result.peakRssMb < 300,
    };
    const full = { ...result, machine: machineInfo() };
    if (!args['no-write']) writeBenchmarkSection('pull-s3', renderMarkdown(full));
    if (json) process.stdout.write(`${JSON.stringify(full)}\n`);
    else {
      const tp = result.throughputMBps;
      log(
        `  throughput MB/s: push ${tp.push}, Upload ${tp.upload}, pull ${tp.pull}, GetObject ${tp.getObject}`,
      );
      for (const [op, c] of Object.entries(result.cpuSeconds)) {
        log(
          `  CPU s ${op.padEnd(9)} client ${c.client}, server ${c.server}, rgw ${c.rgw}, osd ${c.osd}`,
        );
      }
      for (const [k, ok] of Object.entries(result.targetsMet)) {
        log(`${ok ? 'met ' : 'MISS'} ${k} = ${(result as unknown as Record<string, unknown>)[k]}`);
      }
    }
  } catch (err) {
    // After SIGINT the children were killed on purpose: their exits are no failure to report.
    if (cleaning !== undefined) return;
    process.stderr.write(
      `bench:pull --s3 failed: ${err instanceof Error ? err.stack : String(err)}\n`,
    );
    process.exitCode = 1;
  } finally {
    await cleanup();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

interface PullS3Result {
  bench: 'pull-s3';
  backend: ReturnType<typeof backend>;
  sizeBytes: number;
  bigPartBytes: number;
  reps: number;
  seconds: Record<'push' | 'upload' | 'pull' | 'getObject', number[]>;
  throughputMBps: Record<'push' | 'upload' | 'pull' | 'getObject', number>;
  pullVsGetObject: number;
  pushVsUpload: number;
  peakRssMb: number;
  pushPeakRssMb: number;
  baselinePeakRssMb: { getObject: number; upload: number };
  cpuSeconds: Record<'pull' | 'getObject' | 'push' | 'upload', CpuSplit>;
  pushPhasesSeconds: { firstPart: number; upload: number; register: number };
  pullPhasesSeconds: { envelope: number; bigPart: number; fsyncRename: number };
  loadAverage: { before: number[]; after: number[] };
  targetsMet: Record<'pullVsGetObject' | 'pushVsUpload' | 'peakRssMb', boolean>;
}

function renderMarkdown(r: PullS3Result & { machine: { summary: string; cores: number } }): string {
  const tp = r.throughputMBps;
  const s = r.seconds;
  const c = r.cpuSeconds;
  const ph = r.pullPhasesSeconds;
  const row = (name: string, value: string, target: string, ok?: boolean) =>
    `| ${name} | ${value} | ${target} | ${ok === undefined ? '' : ok ? 'met' : '**missed**'} |`;
  const pp = r.pushPhasesSeconds;
  const total = (x: CpuSplit) => x.client + x.server + x.rgw + x.osd;
  const perGiB = (cpu: number, bytes: number) => round2(cpu / (bytes / 1024 ** 3));
  const busy = (x: CpuSplit, seconds: number[]) => round2(total(x) / median(seconds));
  /** Cores a contender must keep busy to reach `target` × its baseline's throughput. */
  const needCores = (
    target: number,
    ours: CpuSplit,
    ourBytes: number,
    base: CpuSplit,
    baseBytes: number,
    baseSeconds: number[],
  ) =>
    round2(
      (target * busy(base, baseSeconds) * perGiB(total(ours), ourBytes)) /
        perGiB(total(base), baseBytes),
    );
  /** CPU s per GiB a contender may spend to reach `target` with the cores it kept busy. */
  const allowCpu = (
    target: number,
    ours: CpuSplit,
    ourSeconds: number[],
    base: CpuSplit,
    baseBytes: number,
    baseSeconds: number[],
  ) =>
    round2(
      (busy(ours, ourSeconds) / busy(base, baseSeconds) / target) * perGiB(total(base), baseBytes),
    );
  const cpuRow = (name: string, x: CpuSplit, bytes: number, seconds: number[]) =>
    `| ${name} | ${x.client} | ${x.server} | ${x.rgw} | ${x.osd} | ${perGiB(total(x), bytes)} | ${busy(x, seconds)} |`;
  return [
    `## Pull from S3 (\`pnpm bench:pull --s3 --size ${formatBytes(r.sizeBytes)} --reps ${r.reps}\`)`,
    '',
    `Run ${new Date().toISOString()} on ${r.machine.summary}. Medians of ${r.reps} repetitions;`,
    `load average (1, 5, 15 min) ${r.loadAverage.before.join(', ')} before and ${r.loadAverage.after.join(', ')} after`,
    '(the bench, radosgw and the OSD keep up to about 2 runnable themselves; beyond that, other',
    'work shared the 2 cores).',
    '',
    'Everything on one machine: a throwaway single-node Ceph (`scripts/ceph/ceph.mjs`: one monitor,',
    'one bluestore OSD on a sparse file, radosgw beast on 127.0.0.1) in the bench temp dir; the',
    'resource API in the bench process on loopback, small parts in an S3 bucket, big parts on an',
    'S3 CDN bucket of the same RGW (read keys to devices, write keys to uploaders). Every client is a',
    'fresh Node process that logs in (or builds its S3 client) first, untimed. Each contender runs',
    'interleaved with its baseline, alternating which goes first.',
    '',
    '- **push**: `push` of the generated file: uploader keys from `/cdn-config`',
    '  (envelope, scrypt KDF), then the file sealed as a stream straight into a `S3Objects.upload`',
    '  multipart upload (8 MiB parts, 4 in flight; chunk digests taken on the way, no temp file),',
    '  then small part, manifest and data key to the API, which checks the object on the CDN.',
    '  Baseline: a plain',
    '  `@aws-sdk/lib-storage` `Upload` (its defaults: 5 MiB parts, 4 in flight) of the plaintext',
    '  file as a read stream.',
    '- **pull**: `pull` to a file as the device user: device envelope (scrypt KDF),',
    '  read keys from `/cdn-config` (a second envelope and KDF), the big part as 8 MiB ranged',
    '  `GetObject`s, 8 in flight (one reused buffer per worker), each chunk checked against its',
    '  manifest digest, decrypted and',
    '  written at its offset into a temp file, fsynced and renamed into place. Baseline: one',
    `  \`GetObjectCommand\` of the same big part (${r.bigPartBytes} bytes of ciphertext), its body`,
    '  piped into a file, then fsync. After every pull the plaintext SHA-256 is checked against the',
    '  source (untimed). Both S3 clients: `forcePathStyle`, checksums only when required.',
    '- **peakRssMb**: VmHWM of the pulling process (the largest of the runs), Node itself included.',
    '',
    '| operation | MB/s | seconds per run | peak RSS MB |',
    '|---|---:|---|---:|',
    `| push | ${tp.push} | ${fmt(s.push)} | ${r.pushPeakRssMb} |`,
    `| lib-storage Upload (plaintext) | ${tp.upload} | ${fmt(s.upload)} | ${r.baselinePeakRssMb.upload} |`,
    `| pull | ${tp.pull} | ${fmt(s.pull)} | ${r.peakRssMb} |`,
    `| GetObject + fsync (big part) | ${tp.getObject} | ${fmt(s.getObject)} | ${r.baselinePeakRssMb.getObject} |`,
    '',
    '| ratio | value | target | |',
    '|---|---:|---|---|',
    row('pullVsGetObject', String(r.pullVsGetObject), '≥ 1.2', r.targetsMet.pullVsGetObject),
    row('pushVsUpload', String(r.pushVsUpload), '≥ 0.9', r.targetsMet.pushVsUpload),
    row('peakRssMb (pulling process)', String(r.peakRssMb), '< 300', r.targetsMet.peakRssMb),
    '',
    'Where the time goes (medians, seconds). Pull: envelope = start to the first progress event',
    '(envelope request, scrypt KDF, small part); big part = first to last progress event (read',
    'keys from `/cdn-config`, ranged GETs, verify, decrypt, pwrite); fsync + rename = the rest.',
    'Push: first part = start to the first uploaded part (uploader keys from `/cdn-config`, sealing',
    'the first parts); upload = first to last upload progress event (sealing, digests and upload',
    'overlap); register = the rest (small part, manifest and data key to the API, which checks the',
    'object on the CDN).',
    '',
    '| pull phase | seconds | | push phase | seconds |',
    '|---|---:|---|---|---:|',
    `| envelope | ${ph.envelope} | | first part | ${pp.firstPart} |`,
    `| big part | ${ph.bigPart} | | upload | ${pp.upload} |`,
    `| fsync + rename | ${ph.fsyncRename} | | register | ${pp.register} |`,
    '',
    'CPU seconds per operation (medians): the client process (all threads), the API server (the',
    'bench process), radosgw and the OSD (`/proc/PID/stat` of the daemons the script started);',
    'then their sum per GiB moved (plaintext for push and pull, the big part for GetObject) and',
    'per second of the median run (cores kept busy).',
    '',
    '| CPU seconds | client | API server | radosgw | OSD | all, per GiB | cores busy |',
    '|---|---:|---:|---:|---:|---:|---:|',
    cpuRow('pull', c.pull, r.sizeBytes, s.pull),
    cpuRow('GetObject', c.getObject, r.bigPartBytes, s.getObject),
    cpuRow('push', c.push, r.sizeBytes, s.push),
    cpuRow('Upload', c.upload, r.sizeBytes, s.upload),
    '',
    `What limits the ratios is CPU. Throughput is cores busy / CPU per GiB, and client, API`,
    `server, radosgw and the OSD share ${r.machine.cores} cores with whatever else runs on the machine.`,
    `The pull's 8 ranges keep ${busy(c.pull, s.pull)} cores busy against GetObject's`,
    `${busy(c.getObject, s.getObject)}, but it spends ${perGiB(total(c.pull), r.sizeBytes)} CPU s per GiB against`,
    `${perGiB(total(c.getObject), r.bigPartBytes)} (its client alone ${perGiB(c.pull.client, r.sizeBytes)} on ranged GETs, SHA-256,`,
    `decryption and pwrite, against ${perGiB(c.getObject.client, r.bigPartBytes)} for receiving and writing one stream).`,
    `Reaching pullVsGetObject 1.2 at that cost takes ${needCores(1.2, c.pull, r.sizeBytes, c.getObject, r.bigPartBytes, s.getObject)} cores busy; with the cores it`,
    `got, it takes at most ${allowCpu(1.2, c.pull, s.pull, c.getObject, r.bigPartBytes, s.getObject)} CPU s per GiB. For pushVsUpload 0.9: at most`,
    `${allowCpu(0.9, c.push, s.push, c.upload, r.sizeBytes, s.upload)} CPU s per GiB (push ${perGiB(total(c.push), r.sizeBytes)}, of which its client`,
    `${perGiB(c.push.client, r.sizeBytes)} against Upload's ${perGiB(c.upload.client, r.sizeBytes)}: encryption and chunk digests on top).`,
    '',
  ].join('\n');
}
