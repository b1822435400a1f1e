// pnpm bench [--json] [--quick] [--only crypto,api,fleet] [--out DIR]
// pnpm bench --render FILE [--out DIR]   (summary and charts again from an earlier --json output)
// Every benchmark in one go, each in its own child process with --json: crypto, pull and push on
// the embedded default and on a throwaway Ceph RGW (pull --s3), batch (when built), the API and
// the fleet (the API over 1 000 to 100 000 accounts, embedded and PostgreSQL).
// Each bench writes its own section of docs/BENCHMARKS.md as it always does; this adds a summary
// at the top (the machine, every target figure) and draws the figures against their targets as
// SVG bar charts in docs/charts/, which the README shows. --quick runs small sizes for trying it:
// the benches then write nothing, and the summary and charts go to a temp dir (or --out).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { barChartSvg, type ChartRow, formatValue } from './charts.js';
import { benchmarksPath, machineInfo, writeBenchmarkSection } from './report.js';
import { parseArgs } from './util.js';

const args = parseArgs(process.argv.slice(2));
const json = Boolean(args.json);
const quick = Boolean(args.quick);
const log = (msg: string) => process.stderr.write(`${msg}\n`);
const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');

interface BenchSpec {
  id: string;
  title: string;
  command: string;
  script: string;
  args: string[];
  quickArgs: string[];
  /** Named figures and their targets, as each bench's own report states them. */
  targets: Record<string, { op: ChartRow['op']; value: number }>;
}

const BENCHES: BenchSpec[] = [
  {
    id: 'crypto',
    title: 'Crypto: native addon vs node:crypto, openssl and cp',
    command: 'pnpm bench:crypto',
    script: 'crypto.js',
    args: [],
    quickArgs: ['--size', '64MiB', '--reps', '1'],
    targets: {
      decryptVsCp: { op: '≥', value: 0.9 },
      decryptVsNode: { op: '≥', value: 1.3 },
      encryptVsOpenssl: { op: '≥', value: 1.4 },
      encryptVsNode: { op: '≥', value: 1.2 },
      memDecryptVsNode: { op: '≥', value: 2.5 },
      splitVsCp: { op: '≥', value: 0.9 },
      concatVsCp: { op: '≥', value: 0.9 },
      maxEventLoopDelayMs: { op: '<', value: 50 },
      peakRssMb: { op: '<', value: 200 },
    },
  },
  {
    id: 'pull',
    title: 'Pull and push on the embedded default',
    command: 'pnpm bench:pull',
    script: 'pull.js',
    args: [],
    quickArgs: ['--size', '64MiB', '--reps', '1'],
    targets: {
      pullVsCurl: { op: '≥', value: 1 },
      pullCpuSecondsPerGiB: { op: '≤', value: 1.5 },
      peakRssMb: { op: '<', value: 150 },
    },
  },
  {
    id: 'pull-s3',
    title: 'Pull and push on an S3 CDN (Ceph RGW)',
    command: 'pnpm bench:pull --s3',
    script: 'pull.js',
    args: ['--s3'],
    quickArgs: ['--size', '64MiB', '--reps', '1'],
    targets: {
      pullVsGetObject: { op: '≥', value: 1.2 },
      pushVsUpload: { op: '≥', value: 0.9 },
      peakRssMb: { op: '<', value: 300 },
    },
  },
  {
    id: 'batch',
    title: 'Batch pulls (pullMany)',
    command: 'pnpm bench:batch',
    script: 'batch.js',
    args: [],
    quickArgs: ['--quick'],
    targets: {
      batchVsSequential: { op: '≥', value: 5 },
      cachedBatchVsDecrypt: { op: '≥', value: 0.8 },
    },
  },
  {
    id: 'api',
    title: 'API: device envelopes per second',
    command: 'pnpm bench:api',
    script: 'api.js',
    args: ['--profile'],
    quickArgs: ['--duration', '3', '--uncached', '8'],
    targets: { envelopesPerSecond: { op: '≥', value: 300 } },
  },
  {
    id: 'fleet',
    title: 'Fleet: the API over 1 000 to 100 000 accounts',
    command: 'pnpm bench:fleet',
    script: 'fleet.js',
    args: [],
    quickArgs: ['--quick'],
    targets: {
      mutationGrowth: { op: '≤', value: 1.5 },
      bindStoreP99Ms: { op: '≤', value: 10 },
      refreshP99Ms: { op: '≤', value: 10 },
      createStoreP99Ms: { op: '≤', value: 10 },
      postgresVsEmbeddedEnvelopes: { op: '≥', value: 0.8 },
    },
  },
];

type Json = Record<string, unknown>;

interface BenchRun {
  id: string;
  status: 'ok' | 'failed' | 'skipped';
  seconds: number;
  /** Why it failed or was skipped. */
  reason?: string;
  result?: Json;
  rows: ChartRow[];
}

const children = new Set<ChildProcess>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    // Each bench cleans up after itself on the same signal (temp dirs, Ceph).
    for (const c of children) c.kill(sig);
    log(`bench: ${sig}, stopping`);
    process.exitCode = 130;
  });
}

/** Runs one bench with --json; its progress goes to our stderr, its last stdout line is JSON. */
function runBench(spec: BenchSpec): Promise<Json> {
  const argv = [
    join(here, spec.script),
    ...spec.args,
    ...(quick ? [...spec.quickArgs, '--no-write'] : []),
    '--json',
  ];
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    children.add(proc);
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
    });
    proc.on('error', reject);
    proc.on('close', (code, signal) => {
      children.delete(proc);
      if (code !== 0) {
        reject(new Error(`${spec.command} exited with ${signal ?? code}`));
        return;
      }
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line) as Json);
      } catch {
        reject(new Error(`${spec.command} printed no JSON line`));
      }
    });
  });
}

/** Every `name` in `result` or one object level down (`embedded.name`), with a number. */
function figures(
  result: Json,
  name: string,
): Array<{ label: string; value: number; met?: boolean }> {
  const found: Array<{ label: string; value: number; met?: boolean }> = [];
  const metOf = (obj: Json): boolean | undefined => {
    const t = obj.targetsMet as Record<string, unknown> | undefined;
    return typeof t?.[name] === 'boolean' ? (t[name] as boolean) : undefined;
  };
  if (typeof result[name] === 'number') {
    found.push({ label: name, value: result[name] as number, met: metOf(result) });
    return found;
  }
  for (const [key, v] of Object.entries(result)) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) continue;
    const inner = v as Json;
    if (typeof inner[name] === 'number') {
      found.push({ label: `${name} (${key})`, value: inner[name] as number, met: metOf(inner) });
    }
  }
  return found;
}

/** The chart rows of one bench: its named figures with the targets it states. */
export function rowsOf(spec: BenchSpec, result: Json): ChartRow[] {
  // A bench may state its targets itself ({name: {op, value}}); those win over the table here.
  const targets = { ...spec.targets };
  const own = result.targets;
  if (typeof own === 'object' && own !== null) {
    for (const [name, t] of Object.entries(own as Record<string, unknown>)) {
      const { op, value } = (t ?? {}) as { op?: unknown; value?: unknown };
      if ((op === '≥' || op === '<' || op === '≤') && typeof value === 'number') {
        targets[name] = { op, value };
      }
    }
  }
  const rows: ChartRow[] = [];
  for (const [name, t] of Object.entries(targets)) {
    for (const f of figures(result, name)) {
      const met =
        f.met ??
        (t.op === '≥' ? f.value >= t.value : t.op === '≤' ? f.value <= t.value : f.value < t.value);
      rows.push({ name: f.label, value: f.value, op: t.op, target: t.value, met });
    }
  }
  return rows;
}

function selected(): BenchSpec[] {
  if (typeof args.only !== 'string') return BENCHES;
  const ids = args.only.split(',').map((s) => s.trim());
  const unknown = ids.filter((id) => !BENCHES.some((b) => b.id === id));
  if (unknown.length > 0) {
    throw new Error(
      `--only: unknown bench ${unknown.join(', ')} (one of ${BENCHES.map((b) => b.id).join(', ')})`,
    );
  }
  return BENCHES.filter((b) => ids.includes(b.id));
}

function renderSummary(
  quickRun: boolean,
  runs: BenchRun[],
  machine: ReturnType<typeof machineInfo>,
  chartDir: string,
  docDir: string,
  meta: { date: string; seconds: number; load: { before: number[]; after: number[] } },
): string {
  const byId = new Map(BENCHES.map((b) => [b.id, b]));
  const lines = [
    `## Summary (\`pnpm bench${quickRun ? ' --quick' : ''}\`)`,
    '',
    `Run on ${meta.date} in ${Math.round(meta.seconds / 60)} min${quickRun ? ' with --quick (small sizes: not the reference figures)' : ''}.`,
    '',
    '| machine | |',
    '| --- | --- |',
    `| CPU | ${machine.cpu} |`,
    `| cores | ${machine.cores} |`,
    `| RAM | ${machine.memGiB} GiB |`,
    `| kernel | Linux ${machine.kernel} |`,
    `| Node | ${machine.node} (OpenSSL ${machine.nodeOpenssl}) |`,
    `| load average | ${meta.load.before.join(' / ')} at the start, ${meta.load.after.join(' / ')} at the end |`,
    '',
    'Every figure with a target, from the sections below (green: met, red: missed; each bar is the',
    'figure over its target, so the dashed line is every target; for `<` and `≤` figures shorter is',
    'better).',
    ...(quickRun
      ? [
          'A --quick run writes no section of its own: the sections below are from the last full run',
          'of each bench, so their figures differ from these.',
        ]
      : []),
    '',
    '| bench | figure | value | target | |',
    '| --- | --- | ---: | ---: | --- |',
  ];
  for (const run of runs) {
    const spec = byId.get(run.id) as BenchSpec;
    if (run.status !== 'ok') {
      lines.push(`| \`${spec.command}\` | ${run.status}: ${run.reason ?? ''} | | | |`);
      continue;
    }
    for (const r of run.rows) {
      lines.push(
        `| \`${spec.command}\` | ${r.name} | ${formatValue(r.value)} | ${r.op} ${formatValue(r.target)} | ${r.met ? 'met' : '**missed**'} |`,
      );
    }
  }
  lines.push('');
  for (const run of runs) {
    if (run.status !== 'ok' || run.rows.length === 0) continue;
    const spec = byId.get(run.id) as BenchSpec;
    const rel = relative(docDir, join(chartDir, `${run.id}.svg`));
    lines.push(`![${spec.title}](${rel})`, '');
  }
  return lines.join('\n');
}

interface Meta {
  date: string;
  seconds: number;
  load: { before: number[]; after: number[] };
}

interface AllResult extends Meta {
  quick: boolean;
  machine: ReturnType<typeof machineInfo>;
  benches: Array<Omit<BenchRun, 'rows'> & { targets: ChartRow[] }>;
  failed: string[];
  missed: string[];
}

/** The summary section (at the top of BENCHMARKS.md in `outDir`) and one chart per bench. */
function writeOutputs(
  outDir: string,
  quickRun: boolean,
  runs: BenchRun[],
  machine: ReturnType<typeof machineInfo>,
  meta: Meta,
): void {
  const chartDir = join(outDir, 'charts');
  mkdirSync(chartDir, { recursive: true });
  for (const run of runs) {
    const spec = BENCHES.find((b) => b.id === run.id);
    if (spec === undefined || run.status !== 'ok' || run.rows.length === 0) continue;
    const m = { ...machine, ...(run.result?.machine as Partial<typeof machine> | undefined) };
    const subtitle = `${spec.command}${quickRun ? ' --quick' : ''} · ${meta.date} · ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Node ${m.node}`;
    writeFileSync(join(chartDir, `${spec.id}.svg`), barChartSvg(spec.title, subtitle, run.rows));
  }
  writeBenchmarkSection('summary', renderSummary(quickRun, runs, machine, chartDir, outDir, meta), {
    path: join(outDir, 'BENCHMARKS.md'),
    top: true,
  });
}

/** Runs the selected benches one after the other; a failed one is recorded and the rest go on. */
async function runAll(specs: BenchSpec[]): Promise<{ runs: BenchRun[]; meta: Meta }> {
  const t0 = Date.now();
  const loadBefore = loadavg();
  const runs: BenchRun[] = [];
  for (const spec of specs) {
    if (process.exitCode === 130) break;
    const started = Date.now();
    if (!existsSync(join(here, spec.script))) {
      runs.push({ id: spec.id, status: 'skipped', seconds: 0, reason: 'not built', rows: [] });
      log(`\n== ${spec.command}: skipped (bench/dist/${spec.script} does not exist)`);
      continue;
    }
    log(`\n== ${spec.command}${quick ? ` ${spec.quickArgs.join(' ')}` : ''}`);
    try {
      const result = await runBench(spec);
      const rows = rowsOf(spec, result);
      runs.push({
        id: spec.id,
        status: 'ok',
        seconds: (Date.now() - started) / 1000,
        result,
        rows,
      });
      for (const r of rows) {
        log(`${r.met ? 'met ' : 'MISS'} ${r.name} = ${formatValue(r.value)} (${r.op} ${r.target})`);
      }
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      const seconds = (Date.now() - started) / 1000;
      runs.push({ id: spec.id, status: 'failed', seconds, reason, rows: [] });
      log(`FAILED ${spec.command}: ${reason}`);
    }
  }
  const round2 = (x: number) => Math.round(x * 100) / 100;
  return {
    runs,
    meta: {
      date: `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
      seconds: (Date.now() - t0) / 1000,
      load: { before: loadBefore.map(round2), after: loadavg().map(round2) },
    },
  };
}

/** `--render FILE`: the runs of an earlier `pnpm bench --json`, their rows drawn anew. */
function readRuns(file: string): { all: AllResult; runs: BenchRun[] } {
  const all = JSON.parse(readFileSync(file, 'utf8')) as AllResult;
  if (!Array.isArray(all.benches))
    throw new Error(`${file} is not the output of pnpm bench --json`);
  const runs = all.benches.map((b): BenchRun => {
    const spec = BENCHES.find((s) => s.id === b.id);
    const rows = spec !== undefined && b.result !== undefined ? rowsOf(spec, b.result) : [];
    return {
      id: b.id,
      status: b.status,
      seconds: b.seconds,
      reason: b.reason,
      result: b.result,
      rows,
    };
  });
  return { all, runs };
}

async function main(): Promise<void> {
  if (typeof args.render === 'string') {
    const { all, runs } = readRuns(args.render);
    const outDir = typeof args.out === 'string' ? args.out : dirname(benchmarksPath);
    writeOutputs(outDir, all.quick, runs, all.machine, all);
    log(`bench: summary and charts of ${args.render} written to ${outDir}`);
    return;
  }
  const specs = selected();
  const outDir =
    typeof args.out === 'string'
      ? args.out
      : quick
        ? mkdtempSync(join(tmpdir(), 'sluice-bench-quick-'))
        : dirname(benchmarksPath);
  log(
    `sluice bench${quick ? ' --quick' : ''}: ${specs.map((s) => s.id).join(', ')} (summary and charts in ${outDir})`,
  );
  const { runs, meta } = await runAll(specs);
  const machine = machineInfo();
  writeOutputs(outDir, quick, runs, machine, meta);
  const failed = runs.filter((r) => r.status === 'failed');
  const missed = runs.flatMap((r) => r.rows.filter((row) => !row.met).map((row) => row.name));
  if (json) {
    const out: AllResult = {
      quick,
      ...meta,
      machine,
      benches: runs.map(({ rows, ...run }) => ({ ...run, targets: rows })),
      failed: failed.map((r) => r.id),
      missed,
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  }
  const docPath = join(outDir, 'BENCHMARKS.md');
  log(
    `\nbench: ${runs.filter((r) => r.status === 'ok').length} ran, ${failed.length} failed, ${runs.filter((r) => r.status === 'skipped').length} skipped; ${missed.length} targets missed; summary in ${relative(repoRoot, docPath) || docPath}`,
  );
  if (failed.length > 0 && process.exitCode === undefined) process.exitCode = 1;
}

await main();
